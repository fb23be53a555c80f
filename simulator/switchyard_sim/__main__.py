"""`python -m switchyard_sim`."""

from .cli import main

raise SystemExit(main())
