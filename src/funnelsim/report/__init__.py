"""Everything that leaves the library for a person: output folders, tables, figures and calibration reports."""
