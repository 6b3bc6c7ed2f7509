pytest_plugins = ["sous_local.testing"]
