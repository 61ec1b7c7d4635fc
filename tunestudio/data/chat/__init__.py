"""Chat templates and what they render: the template, where an assistant turn is, the loss spans."""
