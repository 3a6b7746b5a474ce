pytest_plugins = [
    "tests.fixtures.documents",
    "tests.fixtures.postgres",
    "tests.fixtures.temporal",
    "tests.fixtures.webhooks",
]
