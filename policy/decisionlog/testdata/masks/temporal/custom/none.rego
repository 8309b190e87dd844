package temporal.custom

deny contains "never" if false
