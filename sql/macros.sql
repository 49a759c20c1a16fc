-- Macros the models use, created before them (persisted in the warehouse with the models).

-- A decimal as plain text: no exponent, trailing zeros of the fraction removed, no bare point
-- ("1.500000000000000000" -> "1.5", "0E-18" -> "0"). Same rule as the CSV reports.
create or replace macro plain_decimal(x) as
    rtrim(rtrim(cast(cast(x as decimal(38, 18)) as varchar), '0'), '.');

-- A naive UTC timestamp as ISO-8601 with milliseconds and a Z.
create or replace macro iso_utc(t) as
    strftime(t, '%Y-%m-%dT%H:%M:%S.%g') || 'Z';

-- A reconciliation row's status: a zero difference matches; a non-zero one is provisional while
-- rows may still change (PENDING rows inside, or the row ends within the late-arrival
-- window of the account's newest fetch), and a break otherwise.
create or replace macro recon_status(difference, pending_rows, is_within_late_window) as
    case
        when difference = 0 then 'matched'
        when pending_rows > 0 or coalesce(is_within_late_window, false) then 'provisional'
        else 'break'
    end;
