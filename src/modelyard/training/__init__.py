"""Training engines: built-in algorithms and SageMaker script mode. Pure work: no HTTP, no CLI,
no database."""
