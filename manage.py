#!/usr/bin/env python
"""Django's manage.py; the installed `ketaclinic` command does the same."""

from ketaclinic.core.cli import main

if __name__ == "__main__":
    main()
