package temporal.custom

# Reads input.request whole: events then hold the whole request.
deny contains "huge" if count(input.request) > 999
