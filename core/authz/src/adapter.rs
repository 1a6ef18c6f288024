//! casbin's storage: an [`Adapter`] over the store's `casbin_rules` table.

use casbin::error::AdapterError;
use casbin::{Adapter, Filter, Model, Result};
use guildhall_store::{RuleRow, Store};

/// Loads and saves casbin rules through the store.
#[derive(Debug, Clone)]
pub struct StoreAdapter {
    store: Store,
}

impl StoreAdapter {
    /// An adapter over `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

fn adapter_error(e: guildhall_store::Error) -> casbin::Error {
    AdapterError(Box::new(e)).into()
}

fn rows(ptype: &str, rules: Vec<Vec<String>>) -> Vec<RuleRow> {
    rules
        .into_iter()
        .map(|values| RuleRow {
            ptype: ptype.to_string(),
            values,
        })
        .collect()
}

fn load_into(m: &mut dyn Model, rule: RuleRow) {
    let Some(sec) = rule.ptype.get(..1) else {
        return;
    };
    if let Some(assertions) = m.get_mut_model().get_mut(sec)
        && let Some(assertion) = assertions.get_mut(&rule.ptype)
    {
        assertion.get_mut_policy().insert(rule.values);
    }
}

#[async_trait::async_trait]
impl Adapter for StoreAdapter {
    async fn load_policy(&mut self, m: &mut dyn Model) -> Result<()> {
        for rule in self.store.rules().all().await.map_err(adapter_error)? {
            load_into(m, rule);
        }
        Ok(())
    }

    async fn load_filtered_policy<'a>(&mut self, m: &mut dyn Model, f: Filter<'a>) -> Result<()> {
        let matches = |filter: &[&str], values: &[String]| {
            filter
                .iter()
                .enumerate()
                .all(|(i, want)| want.is_empty() || values.get(i).is_some_and(|v| v == want))
        };
        for rule in self.store.rules().all().await.map_err(adapter_error)? {
            let keep = match rule.ptype.get(..1) {
                Some("p") => matches(&f.p, &rule.values),
                Some("g") => matches(&f.g, &rule.values),
                _ => false,
            };
            if keep {
                load_into(m, rule);
            }
        }
        Ok(())
    }

    async fn save_policy(&mut self, m: &mut dyn Model) -> Result<()> {
        let mut all = Vec::new();
        for sec in ["p", "g"] {
            if let Some(assertions) = m.get_model().get(sec) {
                for (ptype, assertion) in assertions {
                    for values in assertion.get_policy() {
                        all.push(RuleRow {
                            ptype: ptype.clone(),
                            values: values.clone(),
                        });
                    }
                }
            }
        }
        self.store
            .rules()
            .replace_all(&all)
            .await
            .map_err(adapter_error)
    }

    async fn clear_policy(&mut self) -> Result<()> {
        self.store
            .rules()
            .replace_all(&[])
            .await
            .map_err(adapter_error)
    }

    fn is_filtered(&self) -> bool {
        false
    }

    async fn add_policy(&mut self, _sec: &str, ptype: &str, rule: Vec<String>) -> Result<bool> {
        self.add_policies(_sec, ptype, vec![rule]).await
    }

    async fn add_policies(
        &mut self,
        _sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> Result<bool> {
        let added = self
            .store
            .rules()
            .add(&rows(ptype, rules))
            .await
            .map_err(adapter_error)?;
        Ok(added > 0)
    }

    async fn remove_policy(&mut self, sec: &str, ptype: &str, rule: Vec<String>) -> Result<bool> {
        self.remove_policies(sec, ptype, vec![rule]).await
    }

    async fn remove_policies(
        &mut self,
        _sec: &str,
        ptype: &str,
        rules: Vec<Vec<String>>,
    ) -> Result<bool> {
        let removed = self
            .store
            .rules()
            .remove(&rows(ptype, rules))
            .await
            .map_err(adapter_error)?;
        Ok(removed > 0)
    }

    async fn remove_filtered_policy(
        &mut self,
        _sec: &str,
        ptype: &str,
        field_index: usize,
        field_values: Vec<String>,
    ) -> Result<bool> {
        let removed = self
            .store
            .rules()
            .remove_filtered(ptype, field_index, &field_values)
            .await
            .map_err(adapter_error)?;
        Ok(removed > 0)
    }
}
