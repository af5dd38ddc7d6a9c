//! What every command shares: the global options, the printer, and the
//! project the app layer opens from them.

use std::sync::Arc;

use rollway_app::{Options, Project};

use crate::cli::Global;
use crate::output::Printer;
use crate::signals::Signals;

#[derive(Debug)]
pub struct Session {
    pub global: Global,
    pub printer: Printer,
    pub project: Project,
}

impl Session {
    pub fn new(global: Global, printer: Printer) -> Self {
        let options = Options {
            config: global.config.clone(),
            state_dir: global.state_dir.clone(),
            store: global.store.clone(),
            create_store: global.create_store,
            operator: global.operator.clone(),
        };
        let project = Project::new(options, printer.masks().clone(), Arc::new(Signals));
        Self {
            global,
            printer,
            project,
        }
    }
}

impl std::ops::Deref for Session {
    type Target = Project;

    fn deref(&self) -> &Project {
        &self.project
    }
}
