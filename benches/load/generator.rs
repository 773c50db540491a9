//! The load generator: keep-alive connections, one worker each, and what they measure.

use super::*;

pub(crate) type Sender = SendRequest<Full<Bytes>>;

pub(crate) async fn connect(addr: SocketAddr) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender)
}

/// One request to make.
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) path: &'static str,
    pub(crate) bearer: Option<String>,
    pub(crate) body: Option<Vec<u8>>,
}

impl Call {
    pub(crate) fn get(path: &'static str, bearer: Option<String>) -> Self {
        Self {
            method: Method::GET,
            path,
            bearer,
            body: None,
        }
    }

    pub(crate) fn post(
        path: &'static str,
        bearer: Option<String>,
        body: serde_json::Value,
    ) -> Self {
        Self {
            method: Method::POST,
            path,
            bearer,
            body: Some(body.to_string().into_bytes()),
        }
    }

    pub(crate) fn into_request(self, host: &str) -> Request<Full<Bytes>> {
        let mut builder = Request::builder()
            .method(self.method)
            .uri(self.path)
            .header(hyper::header::HOST, host)
            .header(hyper::header::USER_AGENT, "tessera-bench");
        if let Some(token) = self.bearer {
            builder = builder.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match self.body {
            Some(bytes) => {
                builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(bytes))
            }
            None => Full::new(Bytes::new()),
        };
        builder.body(body).expect("a valid request")
    }
}

/// A scenario: what each worker sends next, and whether an answer is a success.
pub(crate) trait Load {
    /// The next request for `worker`, or `None` when the scenario has nothing left to send
    /// (its pre-created tokens are spent).
    fn next(&self, worker: usize) -> Option<Call>;
    /// Judges an answer (`None`: the connection failed).
    fn finish(&self, worker: usize, status: Option<StatusCode>, body: &[u8]) -> bool;
    /// Told before the warm-up (`false`) and before the measurement (`true`).
    fn measuring(&self, _measuring: bool) {}
}

/// What one measurement saw.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    pub(crate) ok: u64,
    pub(crate) errors: u64,
    /// Latency of every answered request, microseconds.
    pub(crate) latencies_us: Vec<u32>,
    pub(crate) elapsed: Duration,
    /// The scenario ran out of pre-created tokens before its time was up.
    pub(crate) exhausted: bool,
    pub(crate) error_samples: Vec<String>,
    pub(crate) cpu: CpuShare,
}

impl Outcome {
    pub(crate) fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub(crate) fn percentile_ms(&self, p: f64) -> f64 {
        percentile(&self.latencies_us, p) / 1000.0
    }
}

/// The `p`-th percentile (0..100) of sorted values, nearest rank.
pub(crate) fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A fixed set of keep-alive connections, one worker each.
pub(crate) struct Workers {
    pub(crate) addr: SocketAddr,
    pub(crate) senders: Vec<Sender>,
}

impl Workers {
    pub(crate) async fn open(addr: SocketAddr, count: usize) -> anyhow::Result<Self> {
        let mut senders = Vec::with_capacity(count);
        for _ in 0..count {
            senders.push(connect(addr).await?);
        }
        Ok(Self { addr, senders })
    }

    /// Every worker sends requests back to back until `run_for` is over (or the load has
    /// nothing left); returns what was seen.
    pub(crate) async fn drive(&mut self, load: &dyn Load, run_for: Duration) -> Outcome {
        let started = Instant::now();
        let deadline = started + run_for;
        let addr = self.addr;
        let host = addr.to_string();
        let results = futures::future::join_all(
            self.senders
                .iter_mut()
                .enumerate()
                .map(|(worker, sender)| run_worker(worker, sender, addr, &host, load, deadline)),
        )
        .await;
        let mut outcome = Outcome {
            elapsed: started.elapsed(),
            ..Outcome::default()
        };
        for result in results {
            outcome.ok += result.ok;
            outcome.errors += result.errors;
            outcome.exhausted |= result.exhausted;
            outcome.latencies_us.extend(result.latencies_us);
            for sample in result.error_samples {
                if outcome.error_samples.len() < 5 {
                    outcome.error_samples.push(sample);
                }
            }
        }
        outcome.latencies_us.sort_unstable();
        outcome
    }
}

pub(crate) async fn run_worker(
    worker: usize,
    sender: &mut Sender,
    addr: SocketAddr,
    host: &str,
    load: &dyn Load,
    deadline: Instant,
) -> Outcome {
    let mut outcome = Outcome::default();
    while Instant::now() < deadline {
        let Some(call) = load.next(worker) else {
            outcome.exhausted = true;
            break;
        };
        let request = call.into_request(host);
        let started = Instant::now();
        let answer = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        let latency = started.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
        match answer {
            Ok((status, body)) => {
                outcome.latencies_us.push(latency);
                if load.finish(worker, Some(status), &body) {
                    outcome.ok += 1;
                } else {
                    outcome.errors += 1;
                    if outcome.error_samples.len() < 5 {
                        let text =
                            String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
                        outcome.error_samples.push(format!("{status}: {text}"));
                    }
                }
            }
            Err(err) => {
                outcome.errors += 1;
                load.finish(worker, None, &[]);
                if outcome.error_samples.len() < 5 {
                    outcome.error_samples.push(format!("connection: {err}"));
                }
                match connect(addr).await {
                    Ok(fresh) => *sender = fresh,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
        }
    }
    outcome
}
