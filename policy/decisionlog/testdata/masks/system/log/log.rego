package system.log

# Drop health checks; mask the caller's email.
drop if input.input.target.health_check

mask contains "/input/claims/jwt/email"
