"""The unmask command line: serve, score, extract, export, train, eval (over model/, training/ and service/)."""
