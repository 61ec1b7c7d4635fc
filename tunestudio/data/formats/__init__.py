"""Reading data files into Records: the readers, plain-text documents, row conversion, the Arrow table and its cache."""
