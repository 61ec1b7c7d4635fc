"""Evaluation and use of models: load, generate, score, compare, benchmark, rate, export.

    loading.py   a base model, or a run's result (full weights, or base + adapter, merged or not)
    generate.py  greedy / sampled decoding, batched with left padding, streaming for the UI
    metrics.py   exact match, F1, BLEU, ROUGE, reference loss / perplexity, custom metric files
    metric_file.py  a custom metric file, run in the process box (rewards/process_box.py)
    run_eval.py  `tunestudio eval`: a test split through one model (and the base), saved results
    report.py    per-example table, groupings, CSV / JSONL / HTML report
    bench.py     `tunestudio bench-models`: a leaderboard of candidate base models
    ratings.py   blind A/B human ratings with win rates and confidence intervals
    export.py    `tunestudio export`: adapter or merged weights with a model card
"""
