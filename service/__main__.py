"""``python -m service`` runs the ``facerec`` command line."""

from service.cli import main

main()
