"""CSV cells that a spreadsheet will not run (CSV injection, OWASP)."""

# A cell starting with one of these is a formula to a spreadsheet; a quote in
# front keeps a customer's name (or a row someone uploaded) from running as one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
