-- Like orders.stage (0080): an e-mail log row names one of the e-mails Entrega sends
-- (activities/emails.py, `EmailType`) and one of the two outcomes the sender records.
ALTER TABLE email_logs ADD CONSTRAINT email_logs_email_type_check
    CHECK (email_type IN ('purchase_confirmation', 'credentials'));
ALTER TABLE email_logs ADD CONSTRAINT email_logs_status_check
    CHECK (status IN ('sent', 'failed'));
