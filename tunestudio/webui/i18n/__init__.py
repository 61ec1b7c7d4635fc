"""The UI's texts in every language: the locale files and Gradio's own strings."""
