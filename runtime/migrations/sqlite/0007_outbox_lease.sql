-- The token of the claim that holds an outbox row (a fence): an ack
-- (delivered, retry, dead, defer) or a lease renewal applies only while
-- the row still carries its claim's token, so the ack of a worker whose
-- lease expired and was taken over changes nothing. 0 for rows never
-- claimed.
ALTER TABLE outbox ADD COLUMN lease INTEGER NOT NULL DEFAULT 0;
