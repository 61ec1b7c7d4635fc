from tunestudio.cli.main import entry

entry()
