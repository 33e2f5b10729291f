"""Built-in subcommands: each module defines NAME, HELP, add_arguments(parser) and run(args) -> exit code."""
