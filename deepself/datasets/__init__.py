"""Public data sets: installers into the layouts the adapters read, and the adapters that make a sample sheet.

- :mod:`deepself.datasets.download`: ``deepself data download``, the steps the installers share;
  :mod:`deepself.datasets.esc10`, :mod:`deepself.datasets.bonn`, :mod:`deepself.datasets.fer2013`.
- :mod:`deepself.datasets.adapters`: layouts (``data.adapter``) to a sample sheet;
  :mod:`deepself.datasets.aeon`: aeon's ``.ts`` files.
"""
