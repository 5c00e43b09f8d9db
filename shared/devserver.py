"""``python -m shared.devserver``: the README's command for the dev server (``shared.host.devserver``)."""

from shared.host.devserver import main

if __name__ == "__main__":
    main()
