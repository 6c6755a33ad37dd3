//! Expo tickets whose receipts are still to be checked: kept at settle, asked for by the alarm when
//! due, then forgotten, asked for again later, or (`DeviceNotRegistered`) reported so the shell
//! forgets the token. The per-receipt rule is `expo::receipt_action`.

use super::{Store, StoreExt, User};
use crate::expo::{receipt_action, Receipt, ReceiptAction, MAX_RECEIPT_ATTEMPTS};
use serde::Deserialize;
use std::collections::BTreeMap;
use switchboard_core::ApiError;

/// At most this many due receipts are checked per alarm run (the rest stay due).
pub const MAX_DUE_PER_RUN: i64 = 1000;

/// A ticket whose receipt is due.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DueReceipt {
    pub ticket_id: String,
    pub user_id: String,
    pub token: String,
    pub due_at: i64,
    pub attempts: i64,
}

/// What checking the due receipts decided, for the shell to carry out and log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// `(user, token)` pairs Expo calls `DeviceNotRegistered`: delete them from D1.
    pub dead_tokens: Vec<(String, String)>,
    /// Receipts that reported an error not about the token: `(ticket, message, error)`.
    pub errors: Vec<(String, String, Option<String>)>,
}

impl<S: Store> User<S> {
    /// Keeps `receipts` of `user_id` to check after the receipt delay; answers when they are due.
    pub(crate) fn keep_receipts(
        &self,
        user_id: &str,
        receipts: &[super::PendingReceipt],
        now_ms: i64,
    ) -> Result<Option<i64>, ApiError> {
        if receipts.is_empty() {
            return Ok(None);
        }
        let due = now_ms.saturating_add(self.config.receipt_delay_ms);
        for r in receipts {
            self.store.run(
                "INSERT OR IGNORE INTO receipts (ticket_id, user_id, token, due_at, attempts) VALUES (?, ?, ?, ?, 0)",
                &[r.ticket_id.as_str().into(), user_id.into(), r.token.as_str().into(), due.into()],
            )?;
        }
        Ok(Some(due))
    }

    /// The receipts due at `now_ms`, oldest first (at most [`MAX_DUE_PER_RUN`]).
    pub fn receipts_due(&self, now_ms: i64) -> Result<Vec<DueReceipt>, ApiError> {
        Ok(self.store.rows(
            "SELECT * FROM receipts WHERE due_at <= ? ORDER BY due_at LIMIT ?",
            &[now_ms.into(), MAX_DUE_PER_RUN.into()],
        )?)
    }

    /// What Expo answered for `due` (`None`: it could not be asked): each receipt is forgotten,
    /// asked for again a receipt delay later, or dropped after `MAX_RECEIPT_ATTEMPTS`.
    pub fn receipts_checked(
        &self,
        due: &[DueReceipt],
        answered: Option<&BTreeMap<String, Receipt>>,
        now_ms: i64,
    ) -> Result<Checked, ApiError> {
        let later = now_ms.saturating_add(self.config.receipt_delay_ms);
        self.command(|| {
            let mut checked = Checked::default();
            for r in due {
                let Some(receipts) = answered else {
                    self.ask_again_or_drop(r, later)?;
                    continue;
                };
                let receipt = receipts.get(&r.ticket_id);
                match receipt_action(receipt, r.attempts + 1) {
                    ReceiptAction::Done => {
                        if let Some(Receipt::Error { error, message }) = receipt {
                            checked.errors.push((r.ticket_id.clone(), message.clone(), error.clone()));
                        }
                        self.forget_receipt(r)?;
                    }
                    ReceiptAction::DeleteToken => {
                        checked.dead_tokens.push((r.user_id.clone(), r.token.clone()));
                        self.forget_receipt(r)?;
                    }
                    ReceiptAction::AskAgain => self.ask_again_or_drop(r, later)?,
                }
            }
            Ok(checked)
        })
    }

    fn forget_receipt(&self, r: &DueReceipt) -> Result<(), ApiError> {
        self.store.run("DELETE FROM receipts WHERE ticket_id = ?", &[r.ticket_id.as_str().into()])?;
        Ok(())
    }

    fn ask_again_or_drop(&self, r: &DueReceipt, later: i64) -> Result<(), ApiError> {
        if r.attempts + 1 >= MAX_RECEIPT_ATTEMPTS {
            self.forget_receipt(r)
        } else {
            self.store.run(
                "UPDATE receipts SET attempts = attempts + 1, due_at = ? WHERE ticket_id = ?",
                &[later.into(), r.ticket_id.as_str().into()],
            )?;
            Ok(())
        }
    }

    /// Every receipt still to be checked, by ticket.
    pub fn receipts(&self) -> Result<Vec<super::ReceiptView>, ApiError> {
        let rows: Vec<DueReceipt> = self.store.rows("SELECT * FROM receipts ORDER BY ticket_id", &[])?;
        Ok(rows
            .into_iter()
            .map(|r| super::ReceiptView {
                ticket_id: r.ticket_id,
                user_id: r.user_id,
                token: r.token,
                due_at: r.due_at,
                attempts: r.attempts,
            })
            .collect())
    }
}
