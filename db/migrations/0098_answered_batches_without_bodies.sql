-- An answered Resend batch is never posted again: a retry of one of its e-mails reads the id
-- recorded in `message_ids`. Its bodies are therefore erased when the answer is recorded
-- (db/email_batches.py, `record_answer`), as `orders.encrypted_password` is: a credentials
-- e-mail's body holds the generated password, sealed or not. This erases them from the batches
-- answered before that, keeping each item's keys and its place in the batch.
UPDATE email_batches
SET items = (
    SELECT json_agg(e.value::jsonb - 'sealed_payload' ORDER BY e.n)
    FROM json_array_elements(items) WITH ORDINALITY AS e(value, n)
)
WHERE message_ids IS NOT NULL;
