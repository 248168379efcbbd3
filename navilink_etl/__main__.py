"""``python -m navilink_etl``: the same as the ``navilink-etl`` command."""

from .cli import main

main()
