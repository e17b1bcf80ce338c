//! Embedded store (stub, replaced by the real implementation).
use std::path::Path;

use super::{Cond, Item, Key, Page, Query, Result, StoreError, Update, Write};
use crate::platform::clock::Clock;

#[derive(Clone)]
pub struct EmbeddedStore {
    clock: Clock,
}

fn todo_err() -> StoreError {
    StoreError::Backend(anyhow::anyhow!("not implemented yet"))
}

impl EmbeddedStore {
    pub fn open(_path: &Path, clock: Clock) -> anyhow::Result<Self> {
        Ok(EmbeddedStore { clock })
    }
    pub async fn ensure_table(&self) -> Result<()> {
        Ok(())
    }
    pub async fn get(&self, _key: &Key) -> Result<Option<Item>> {
        Err(todo_err())
    }
    pub async fn put(&self, _item: Item, _cond: Option<Cond>) -> Result<()> {
        Err(todo_err())
    }
    pub async fn update(&self, _key: &Key, _update: Update, _cond: Option<Cond>) -> Result<Item> {
        Err(todo_err())
    }
    pub async fn delete(&self, _key: &Key, _cond: Option<Cond>) -> Result<Option<Item>> {
        Err(todo_err())
    }
    pub async fn query(&self, _query: Query) -> Result<Page> {
        Err(todo_err())
    }
    pub async fn transact(&self, _writes: Vec<Write>) -> Result<()> {
        Err(todo_err())
    }
    pub fn clock(&self) -> &Clock {
        &self.clock
    }
}
