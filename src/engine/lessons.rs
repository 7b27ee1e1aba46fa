//! The built-in lessons: walkthrough files (`walkthroughs/*.toml`, format `iotls-walkthrough/1`,
//! docs/walkthrough-format.md) embedded in iotls. Each runs for real and shows one idea of the
//! security model (docs/curriculum.md), including what a failure looks like.

use super::{EngineError, Scenario};
use crate::walkthrough::{self, WalkError};

/// The built-in lessons' ids, in curriculum order.
pub fn names() -> Vec<&'static str> {
    walkthrough::ids()
}

/// A built-in lesson (or a lesson file) as a scenario, with a fresh PKI, under MQTT 3.1.1 unless
/// the lesson pins MQTT 5.
pub fn scenario(name: &str) -> Result<Scenario, EngineError> {
    let lesson = walkthrough::load(name, &[])?;
    Ok(lesson.scenario(None)?)
}

impl From<WalkError> for EngineError {
    fn from(e: WalkError) -> Self {
        match e {
            WalkError::Unknown { name, known } => EngineError::UnknownLesson { name, known },
            other => EngineError::Lesson(other),
        }
    }
}
