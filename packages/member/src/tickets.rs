//! Connect tickets: each nonce is redeemed once, and only before it expires. Redeemed nonces are
//! kept until their ticket would have expired anyway, then swept by the next redemption.

use crate::store::Store;
use crate::{Member, Outcome, Reply};
use switchboard_core::ApiError;

impl<S: Store> Member<S> {
    pub(crate) fn redeem_ticket(&self, nonce: &str, expires_at_ms: i64, now: i64) -> Outcome {
        let refused = || ApiError::unauthorized("ticket is invalid, used or expired");
        if expires_at_ms <= now {
            // Still sweep what expired: a refusal changes nothing else.
            let (swept, effects) = self.command(|| self.sweep_tickets(now));
            return (swept.and(Err(refused())), effects);
        }
        self.command(|| {
            self.sweep_tickets(now)?;
            let written = self.exec(
                "INSERT OR IGNORE INTO tickets (nonce, expires_at) VALUES (?, ?)",
                &[nonce.into(), expires_at_ms.into()],
            )?;
            if written == 0 {
                return Err(refused());
            }
            Ok(Reply::no_content())
        })
    }

    fn sweep_tickets(&self, now: i64) -> Result<(), ApiError> {
        self.exec("DELETE FROM tickets WHERE expires_at <= ?", &[now.into()])?;
        Ok(())
    }
}
