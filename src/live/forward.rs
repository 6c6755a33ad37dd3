//! The worker's side of a publish: it asks the channel first (`/check`), so a refused publish is
//! answered before any body is forwarded. Then it pumps the client's body into a stream of its own
//! rather than handing the request body over, and it ends that stream itself, normally, when the
//! client's body ends, breaks off, or stays silent for the idle timeout
//! (`switchboard_live::idle::IdleTimer`). The channel reads its body to the end before answering,
//! so no stream is ever cut mid-read (the runtime answers that with an uncaught error and a
//! restarted isolate).

use crate::http::{internal, json};
use crate::platform;
use crate::rpc::{CONVERSATION_HEADER, LIVE, MEMBER_HEADER};
use futures::future::{select, Either};
use switchboard_core::ApiError;
use switchboard_live::idle::IdleTimer;
use switchboard_live::{Ended, PublishAnswer};
use switchboard_worker_kit::call::{error_of, stub};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use worker::{Env, Method, Request, RequestInit, Response};

/// Forwards a publish to the conversation's live channel, streaming the body as it arrives.
pub async fn live_publish(
    env: &Env,
    conversation_id: &str,
    member_id: &str,
    req: &Request,
    idle_ms: i64,
    max_ms: i64,
) -> Result<Response, ApiError> {
    let channel = stub(env, LIVE, conversation_id)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(caller_headers(conversation_id, member_id)?);
    let check = Request::new_with_init("https://object/check", &init).map_err(|e| internal("build check", e))?;
    let mut checked = channel.fetch_with_request(check).await.map_err(|e| internal("call live channel", e))?;
    let status = checked.status_code();
    if status >= 300 {
        let text = checked.text().await.map_err(|e| internal("read live check", e))?;
        return Err(error_of(status, &text));
    }

    let headers = caller_headers(conversation_id, member_id)?;
    let pipe = web_sys::TransformStream::new().map_err(|e| internal("transform stream", format!("{e:?}")))?;
    let writer = pipe.writable().get_writer().map_err(|e| internal("pipe writer", format!("{e:?}")))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(pipe.readable().into()));
    let forwarded =
        Request::new_with_init("https://object/publish", &init).map_err(|e| internal("build publish", e))?;
    let reader: Option<web_sys::ReadableStreamDefaultReader> =
        req.inner().body().map(|b| b.get_reader().unchecked_into());

    let pump = {
        let reader = reader.clone();
        let writer = writer.clone();
        async move {
            let mut ended = Ended::Complete;
            if let Some(reader) = reader {
                let mut idle = IdleTimer::new(idle_ms, max_ms, platform::now_ms());
                loop {
                    let read = JsFuture::from(reader.read());
                    let wait = idle.wait_ms(platform::now_ms());
                    let timer = worker::Delay::from(std::time::Duration::from_millis(wait));
                    futures::pin_mut!(read);
                    futures::pin_mut!(timer);
                    let chunk = match select(read, timer).await {
                        Either::Left((Ok(chunk), _)) => chunk,
                        Either::Left((Err(_), _)) => {
                            ended = Ended::Aborted;
                            break;
                        }
                        Either::Right(_) => {
                            ended = idle.ending(platform::now_ms());
                            break;
                        }
                    };
                    idle.chunk(platform::now_ms());
                    let done =
                        js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|v| v.as_bool()).unwrap_or(true);
                    if done {
                        break;
                    }
                    let Ok(value) = js_sys::Reflect::get(&chunk, &"value".into()) else { break };
                    if JsFuture::from(writer.write_with_chunk(&value)).await.is_err() {
                        ended = Ended::Aborted;
                        break;
                    }
                }
                if ended != Ended::Complete {
                    // Stop reading the client before anything is answered.
                    detach(reader.cancel());
                }
            }
            detach(writer.close());
            ended
        }
    };
    let fetch = channel.fetch_with_request(forwarded);
    futures::pin_mut!(pump);
    futures::pin_mut!(fetch);
    let (answer, ended) = match select(fetch, pump).await {
        Either::Left((answer, _unpolled_pump)) => {
            // The channel answered before the body ended (only on a fault): stop reading the client.
            if let Some(r) = &reader {
                detach(r.cancel());
            }
            detach(writer.abort());
            (answer, Ended::Aborted)
        }
        Either::Right((ended, fetch)) => (fetch.await, ended),
    };
    let mut resp = answer.map_err(|e| internal("forward publish", e))?;
    let status = resp.status_code();
    let text = resp.text().await.map_err(|e| internal("read publish answer", e))?;
    if status >= 300 {
        return Err(error_of(status, &text));
    }
    let mut answer: PublishAnswer = serde_json::from_str(&text).map_err(|e| internal("decode publish answer", e))?;
    answer.ended = ended;
    json(status, &answer)
}

/// The headers that name the caller and the conversation to the channel.
fn caller_headers(conversation_id: &str, member_id: &str) -> Result<worker::Headers, ApiError> {
    let headers = worker::Headers::new();
    let set = |k: &str, v: &str| headers.set(k, v).map_err(|e| internal("set header", e));
    set(MEMBER_HEADER, member_id)?;
    set(CONVERSATION_HEADER, conversation_id)?;
    Ok(headers)
}

/// Awaits a promise in the background and ignores how it ends.
fn detach(promise: js_sys::Promise) {
    wasm_bindgen_futures::spawn_local(async move {
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    });
}
