//! What one sign-in's certificate checks may cost. A client chooses the certificates it sends,
//! so it chooses how many signatures path building has to try: the budget bounds that work by
//! count (a ceiling on signature verifications) and by time (a deadline), whatever the input.

use std::time::Instant;

use super::{PkiError, Reason};

#[derive(Debug)]
pub struct Budget {
    max_signature_checks: usize,
    deadline: Option<Instant>,
    used: usize,
}

impl Budget {
    pub fn new(max_signature_checks: usize, deadline: Option<Instant>) -> Budget {
        Budget {
            max_signature_checks,
            deadline,
            used: 0,
        }
    }

    /// Asks for one more signature verification: refused past the ceiling (`too_complex`: the
    /// input is built to be expensive) or past the deadline (`busy`: the machine is too slow
    /// right now to finish in time; nothing was decided about the certificate).
    pub fn spend(&mut self) -> Result<(), PkiError> {
        if self.used >= self.max_signature_checks {
            return Err(PkiError::new(
                Reason::TooComplex,
                format!(
                    "checking these certificates needs more than {} signature verifications",
                    self.max_signature_checks
                ),
            ));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(PkiError::new(
                Reason::Busy,
                "the certificate checks did not finish in time; try again",
            ));
        }
        self.used += 1;
        Ok(())
    }

    /// Signature verifications spent so far.
    pub fn used(&self) -> usize {
        self.used
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_and_the_deadline_refuse_with_their_reasons() {
        let mut b = Budget::new(2, None);
        assert!(b.spend().is_ok());
        assert!(b.spend().is_ok());
        assert_eq!(b.spend().unwrap_err().reason, Reason::TooComplex);
        assert_eq!(b.used(), 2);
        let mut b = Budget::new(10, Some(Instant::now()));
        assert_eq!(b.spend().unwrap_err().reason, Reason::Busy);
        assert_eq!(b.used(), 0);
    }
}
