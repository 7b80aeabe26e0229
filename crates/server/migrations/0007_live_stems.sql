-- Live stems (issue 16): where the listener asked a separation to start; the
-- worker separates from there to the end first, then the start.
ALTER TABLE jobs ADD COLUMN from_s REAL;
