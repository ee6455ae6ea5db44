//! Small helpers for sled transactions that abort with a `StoreError`.

use crate::error::StoreError;
use sled::transaction::{ConflictableTransactionError, ConflictableTransactionResult};

pub(crate) type TxResult<T> = ConflictableTransactionResult<T, StoreError>;

pub(crate) fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}
