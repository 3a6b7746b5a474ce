pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.temporal", "tests.fixtures.webhooks"]
