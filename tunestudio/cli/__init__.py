"""The `tunestudio` command line: one module per area, each a face over the library below it."""
