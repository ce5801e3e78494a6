//! The internal model of a run and its wire renderings.
//!
//! A [`Run`] holds one [`EngineStatus`]; [`render`] turns it into the JSON body
//! of `GET /api/v3/runs/{runId}` for the API version and key of a request.

mod render;
mod run;
mod status;

pub use render::{
    ListEnv, PacketUrls, RenderOptions, json_number, json_string_len, push_json_str, render, render_children,
    render_json, render_json_with, render_list_item,
};
pub use run::{CronKind, Run, Schedule, ScheduleGenerator, SerializedError, TriggerFunction};
pub use status::{ApiStatus, ApiVersion, EngineStatus, Phase, StatusFlags};
