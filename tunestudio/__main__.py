from tunestudio.cli import entry

entry()
