"""caio's version: the caio API release this package replaces, plus ours."""

# The API level of PyPI's caio this package is a drop-in replacement for;
# dependents pin "caio~=0.9", so the public version stays in that series.
__version__ = "0.9.25+caiofs.0.1.0"
__author__ = "caiofs developers"
version_info = (0, 9, 25)
