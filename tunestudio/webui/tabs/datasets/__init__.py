"""The Datasets tab: files, upload, check, clean, statistics, preview."""
