"""The Evaluate tab: scores on a split or a held-out file, base vs tuned, the forgetting check, the leaderboard."""
