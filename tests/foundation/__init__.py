"""The foundation: the function wrapper, configuration, migrations, crypto, the layout."""
