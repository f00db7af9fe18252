"""The LightningCLI's subcommands, named once for the dispatcher and the top-level help."""

TRAINING_SUBCOMMANDS = {
    "fit": "Train a model (then evaluate the final weights on the validation queries).",
    "validate": "Evaluate a checkpoint on the validation queries.",
    "test": "Evaluate a checkpoint on the test queries.",
    "predict": "Write the packed codes of the test queries and the database.",
}
"""``hashbench fit --help`` lists each one's options."""
