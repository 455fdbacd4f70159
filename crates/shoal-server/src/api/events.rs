//! The live push channel: Server-Sent Events for one job. The stream opens with the job's
//! current state (so a client never misses what happened before it subscribed), then relays
//! events. A subscriber that falls behind gets a `resync` event and should re-read the job.

use super::ApiError;
use super::extract::{Path, Query};
use crate::app::App;
use crate::auth::Caller;
use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt as _};
use serde::Deserialize;
use shoal_types::api::{JobEvent, StatusCount};
use shoal_types::{HostId, JobId};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    host_id: Option<HostId>,
    /// Accepted for browsers' EventSource, which cannot set headers; checked by the auth layer.
    #[allow(dead_code)]
    access_token: Option<String>,
}

fn to_sse(e: &JobEvent) -> Event {
    Event::default()
        .event(e.name())
        .data(serde_json::to_string(e).unwrap_or_default())
}

#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "jobs", params(("id" = i64, Path, description = "job id"), EventsQuery),
    responses((status = 200, description = "Server-sent events: `event:` is the variant name, `data:` the JSON", body = JobEvent, content_type = "text/event-stream")))]
pub async fn stream(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    Path(job_id): Path<JobId>,
    Query(q): Query<EventsQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let mut rx = app.events.subscribe();
    let job = super::jobs::job_in(&app, &caller, job_id).await?;
    let watch = q.host_id.map(|h| app.events.watch(job_id, h));
    let mut initial = vec![JobEvent::Job {
        job_id,
        status: job.status,
    }];
    for step in app.store.get_steps(job_id).await? {
        let counts = app.store.task_counts(step.id, step.attempt).await?;
        initial.push(JobEvent::Step {
            job_id,
            step_id: step.id,
            attempt: step.attempt,
            status: step.status,
            counts: counts
                .into_iter()
                .map(|(status, count)| StatusCount { status, count })
                .collect(),
        });
    }
    let host = q.host_id;
    let finished = job.status.is_terminal();
    let shutdown = app.shutdown.clone();
    let (tx, out) = tokio::sync::mpsc::channel::<Event>(64);
    tokio::spawn(async move {
        let _watch = watch;
        for e in &initial {
            if tx.send(to_sse(e)).await.is_err() {
                return;
            }
        }
        // A finished job's stream ends after its state: `curl -N` returns.
        if finished {
            return;
        }
        loop {
            let next = tokio::select! {
                _ = tx.closed() => return, // the client went away
                _ = shutdown.cancelled() => return,
                r = rx.recv() => r,
            };
            let mut ended = false;
            let event = match next {
                Ok(e) if e.job_id() == job_id => {
                    ended = matches!(e, JobEvent::Job { status, .. } if status.is_terminal());
                    let other_host = matches!(e, JobEvent::Log { host_id, .. } | JobEvent::Task { host_id, .. } if Some(host_id) != host);
                    if other_host {
                        continue;
                    }
                    to_sse(&e)
                }
                Ok(_) => continue,
                Err(RecvError::Lagged(_)) => Event::default().event("resync").data("{}"),
                Err(RecvError::Closed) => return,
            };
            if tx.send(event).await.is_err() {
                return;
            }
            if ended {
                return; // the job's terminal event was the last one
            }
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(out).map(Ok);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
