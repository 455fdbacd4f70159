//! The fetch's bookkeeping: chunk and file states, what to ask and announce, and reactions to
//! downloads, assemblies, server answers and timers.

use super::*;

impl<H: Holders> Fetch<H> {
    pub(super) fn new(ctx: Ctx<H>, spec: Arc<FetchSpec>, owner: Option<(u32, u32)>) -> Self {
        let mut chunks: HashMap<Hash, ChunkInfo> = HashMap::new();
        for (i, file) in spec.files.iter().enumerate() {
            for c in &file.chunks {
                let info = chunks.entry(c.hash).or_insert_with(|| ChunkInfo {
                    size: c.size,
                    files: Vec::new(),
                    state: if ctx.cache.has(&c.hash) {
                        ChunkState::Held
                    } else {
                        ChunkState::Needed
                    },
                    rounds: 0,
                    corrupt: false,
                    from: None,
                });
                if info.files.last() != Some(&i) {
                    info.files.push(i);
                }
            }
        }
        let files = spec
            .files
            .iter()
            .map(|_| FileInfo {
                status: FileStatus::Pending,
                reported: 0,
                started: None,
                refetched: 0,
            })
            .collect();
        let mut f = Fetch {
            ctx,
            spec,
            chunks,
            files,
            owner,
            first_error: None,
            failed: Vec::new(),
            lost: Vec::new(),
            have: Vec::new(),
            have_due: None,
            asked: None,
            retry_at: None,
            progress_at: Instant::now() + PROGRESS_EVERY,
            ready: VecDeque::new(),
            downloads: JoinSet::new(),
            assembling: JoinSet::new(),
            parts: PartRoutes::default(),
        };
        for i in 0..f.files.len() {
            if f.all_held(i) {
                f.ready.push_back(i);
            }
        }
        f
    }

    fn all_held(&self, index: usize) -> bool {
        self.spec.files[index]
            .chunks
            .iter()
            .all(|c| self.chunks.get(&c.hash).map(|i| i.state) == Some(ChunkState::Held))
    }

    fn held_bytes(&self, index: usize) -> u64 {
        self.spec.files[index]
            .chunks
            .iter()
            .filter(|c| self.chunks.get(&c.hash).map(|i| i.state) == Some(ChunkState::Held))
            .map(|c| u64::from(c.size))
            .sum()
    }

    /// Every file is done or failed and nothing is being written.
    pub(super) fn finished(&self) -> bool {
        self.assembling.is_empty()
            && self
                .files
                .iter()
                .all(|f| matches!(f.status, FileStatus::Done | FileStatus::Failed))
    }

    fn send(&self, msg: AgentMsg) {
        if let Err(e) = self.ctx.out.try_send(msg) {
            tracing::debug!(task = %self.ctx.key, error = %e, "file message dropped");
        }
    }

    /// Announces every chunk held (start, and after a new session).
    pub(super) fn send_have_all(&mut self) {
        self.have = self
            .chunks
            .iter()
            .filter(|(_, c)| c.state == ChunkState::Held)
            .map(|(h, _)| *h)
            .collect();
        self.flush_have();
    }

    pub(super) fn flush_have(&mut self) {
        self.have_due = None;
        let have = std::mem::take(&mut self.have);
        for batch in have.chunks(HAVE_MAX) {
            self.send(AgentMsg::Have {
                key: self.ctx.key,
                chunks: batch.to_vec(),
            });
        }
    }

    fn in_flight(&self) -> usize {
        self.downloads.len()
    }

    /// Chunks still to fetch for a file that is not over.
    fn wanted(&self) -> bool {
        self.chunks.values().any(|c| {
            c.state == ChunkState::Needed
                && c.files
                    .iter()
                    .any(|i| self.files[*i].status == FileStatus::Pending)
        })
    }

    /// Sends `WhoHas` when there is room for downloads and no ask is outstanding.
    pub(super) fn maybe_ask(&mut self) {
        let now = Instant::now();
        if self.asked.is_some()
            || self.retry_at.is_some_and(|t| now < t)
            || self.in_flight() >= MAX_IN_FLIGHT
            || !self.wanted()
        {
            return;
        }
        self.flush_have();
        self.retry_at = None;
        self.asked = Some(now);
        let failed = std::mem::take(&mut self.failed);
        let lost = std::mem::take(&mut self.lost);
        self.send(AgentMsg::WhoHas {
            key: self.ctx.key,
            want: (MAX_IN_FLIGHT - self.in_flight()) as u32,
            failed,
            lost,
        });
    }

    pub(super) fn next_wake(&self) -> Instant {
        let mut wake = self.progress_at;
        for t in [
            self.have_due,
            self.retry_at,
            self.asked.map(|t| t + REASK_AFTER),
        ]
        .into_iter()
        .flatten()
        {
            wake = wake.min(t);
        }
        wake
    }

    pub(super) fn on_timer(&mut self) {
        let now = Instant::now();
        if self.have_due.is_some_and(|t| now >= t) {
            self.flush_have();
        }
        if self.asked.is_some_and(|t| now >= t + REASK_AFTER) {
            // The ask or its answer was lost.
            self.asked = None;
        }
        if now >= self.progress_at {
            self.report_progress(now);
        }
    }

    fn report_progress(&mut self, now: Instant) {
        let elapsed = (now - (self.progress_at - PROGRESS_EVERY))
            .as_secs_f64()
            .max(0.001);
        self.progress_at = now + PROGRESS_EVERY;
        let mut entries = Vec::new();
        for i in 0..self.files.len() {
            if self.files[i].status != FileStatus::Pending || self.files[i].started.is_none() {
                continue;
            }
            let bytes = self.held_bytes(i);
            let delta = bytes.saturating_sub(self.files[i].reported);
            self.files[i].reported = bytes;
            entries.push(FileProgressEntry {
                index: i as u32,
                bytes,
                speed: (delta as f64 / elapsed) as u64,
                done: false,
                error: None,
                from: Vec::new(),
            });
        }
        if !entries.is_empty() {
            self.send(AgentMsg::FileProgress {
                key: self.ctx.key,
                files: entries,
            });
        }
    }

    pub(super) async fn on_event<S: Sink>(&mut self, event: Event, log: &mut Log<'_, S>) {
        match event {
            Event::Peers {
                ticket,
                assign,
                retry_ms,
            } => {
                self.asked = None;
                let mut started = 0;
                for a in assign {
                    if self.start_download(a, &ticket, log).await {
                        started += 1;
                    }
                }
                if started == 0 {
                    let wait = Duration::from_millis(u64::from(retry_ms)).max(MIN_RETRY);
                    self.retry_at = Some(Instant::now() + wait);
                }
            }
            Event::Part { hash, part } => {
                let route = download::lock_routes(&self.parts).get(&hash).cloned();
                if let Some(tx) = route
                    && tx.try_send(part).is_err()
                {
                    tracing::debug!(task = %self.ctx.key, chunk = %to_hex(&hash), "chunk part dropped");
                }
            }
            Event::Session => {
                // Server downloads of the old session get nothing more.
                download::lock_routes(&self.parts).clear();
                self.asked = None;
                self.retry_at = None;
                self.send_have_all();
            }
        }
    }

    /// Starts a download for an assignment unless the chunk is held, in flight or unknown.
    async fn start_download<S: Sink>(
        &mut self,
        a: Assignment,
        ticket: &Ticket,
        log: &mut Log<'_, S>,
    ) -> bool {
        let Some(info) = self.chunks.get_mut(&a.hash) else {
            return false;
        };
        if info.state == ChunkState::Needed && a.holders.is_empty() {
            // The tracker knows no live holder of this chunk any more (its sources are gone).
            let message = format!(
                "chunk {} is no longer held by any host (the source host is gone)",
                &to_hex(&a.hash)[..12]
            );
            for i in info.files.clone() {
                if self.files[i].status == FileStatus::Pending {
                    self.fail_file(i, FileErrorCode::Unavailable, message.clone(), log)
                        .await;
                }
            }
            return false;
        }
        if info.state != ChunkState::Needed {
            return false;
        }
        info.state = ChunkState::InFlight;
        let (size, files) = (info.size, info.files.clone());
        for i in files {
            if self.files[i].started.is_none() && self.files[i].status == FileStatus::Pending {
                self.files[i].started = Some(Instant::now());
                let file = &self.spec.files[i];
                log.line(format!(
                    "start {} ({}) from {} {}",
                    file.dest,
                    human(file.size),
                    holder_name(file.source_host_id),
                    file.source_path
                ))
                .await;
                // The server's row starts now (its started_at), not at the first periodic report.
                let bytes = self.held_bytes(i);
                self.files[i].reported = bytes;
                self.send(AgentMsg::FileProgress {
                    key: self.ctx.key,
                    files: vec![FileProgressEntry {
                        index: i as u32,
                        bytes,
                        speed: 0,
                        done: false,
                        error: None,
                        from: Vec::new(),
                    }],
                });
            }
        }
        let shared = Shared {
            key: self.ctx.key,
            holders: self.ctx.holders.clone(),
            out: self.ctx.out.clone(),
            parts: self.parts.clone(),
            limiter: self.ctx.download.clone(),
            cache: self.ctx.cache.clone(),
        };
        let job = Job {
            hash: a.hash,
            size,
            holders: a.holders,
            ticket: ticket.clone(),
        };
        self.downloads.spawn(download::download(shared, job));
        true
    }

    pub(super) async fn on_download<S: Sink>(&mut self, done: Done, log: &mut Log<'_, S>) {
        for note in &done.notes {
            log.line(note).await;
        }
        let corrupt = done.failed.iter().any(|f| f.corrupt);
        self.failed.extend(done.failed);
        let Some(info) = self.chunks.get_mut(&done.hash) else {
            return;
        };
        let failure = match done.result {
            Ok(holder) => {
                info.state = ChunkState::Held;
                info.from = Some(holder);
                self.have.push(done.hash);
                self.have_due
                    .get_or_insert_with(|| Instant::now() + HAVE_BATCH);
                let files = info.files.clone();
                for i in files {
                    if self.files[i].status == FileStatus::Pending && self.all_held(i) {
                        self.ready.push_back(i);
                        self.files[i].status = FileStatus::Assembling;
                    }
                }
                return;
            }
            Err(Failure::Lost) => {
                info.state = ChunkState::Needed;
                return;
            }
            Err(Failure::Holders) => {
                info.state = ChunkState::Needed;
                info.rounds += 1;
                info.corrupt |= corrupt;
                if info.rounds < MAX_ROUNDS {
                    return;
                }
                let code = if info.corrupt {
                    FileErrorCode::ChecksumMismatch
                } else {
                    FileErrorCode::Unavailable
                };
                let message = format!(
                    "chunk {} could not be fetched from any holder ({} attempts)",
                    &to_hex(&done.hash)[..12],
                    info.rounds
                );
                (code, message)
            }
            Err(Failure::Local(code, message)) => {
                info.state = ChunkState::Needed;
                (code, message)
            }
        };
        let files = info.files.clone();
        for i in files {
            if self.files[i].status == FileStatus::Pending {
                self.fail_file(i, failure.0, failure.1.clone(), log).await;
            }
        }
    }

    pub(super) fn start_assemblies(&mut self) {
        while self.assembling.len() < MAX_ASSEMBLING {
            let Some(index) = self.ready.pop_front() else {
                return;
            };
            if self.files[index].status == FileStatus::Failed {
                continue;
            }
            let file = &self.spec.files[index];
            self.files[index].status = FileStatus::Assembling;
            let plan = TargetFile {
                dest: file.dest.clone().into(),
                size: file.size,
                mode: file.mode,
                chunks: file.chunks.clone(),
                owner: self.owner,
            };
            let opts = AssembleOptions {
                dir_mode: self.spec.dir_mode,
            };
            let cache = self.ctx.cache.clone();
            self.assembling
                .spawn_blocking(move || (index, assemble::assemble(&plan, &cache, &opts)));
        }
    }

    pub(super) async fn on_assembled<S: Sink>(
        &mut self,
        index: usize,
        result: Result<(), AssembleError>,
        log: &mut Log<'_, S>,
    ) {
        let file = &self.spec.files[index];
        match result {
            Ok(()) => {
                self.files[index].status = FileStatus::Done;
                let secs = self.files[index]
                    .started
                    .map_or(0.0, |t| t.elapsed().as_secs_f64());
                let average = if secs > 0.0 {
                    (file.size as f64 / secs) as u64
                } else {
                    0
                };
                let speed = if secs > 0.0 {
                    format!("{}/s", human(average))
                } else {
                    "from cache".to_owned()
                };
                log.line(format!(
                    "done {} ({}, {secs:.1} s, {speed})",
                    file.dest,
                    human(file.size)
                ))
                .await;
                self.send(AgentMsg::FileProgress {
                    key: self.ctx.key,
                    files: vec![FileProgressEntry {
                        index: index as u32,
                        bytes: file.size,
                        speed: average,
                        done: true,
                        error: None,
                        from: self.received_from(index),
                    }],
                });
            }
            Err(AssembleError::MissingChunk { hash })
                if self.files[index].refetched < file.chunks.len() =>
            {
                // Evicted from the cache meanwhile, or dropped there as corrupt: fetch it again
                // (each chunk of the file at most once), and tell the tracker we lost it.
                self.files[index].refetched += 1;
                self.files[index].status = FileStatus::Pending;
                if let Some(info) = self.chunks.get_mut(&hash) {
                    info.state = ChunkState::Needed;
                }
                self.lost.push(hash);
                log.line(format!(
                    "chunk {} left the cache; fetching it again",
                    &to_hex(&hash)[..12]
                ))
                .await;
            }
            Err(e) => {
                self.files[index].status = FileStatus::Pending;
                self.fail_file(index, assemble_code(&e), e.to_string(), log)
                    .await;
            }
        }
    }

    /// Bytes of file `index`'s chunks per holder that delivered them during this fetch; a
    /// chunk several files share counts for the first of them.
    fn received_from(&self, index: usize) -> Vec<(i64, u64)> {
        let mut by_holder: Vec<(i64, u64)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for c in &self.spec.files[index].chunks {
            let Some(info) = self.chunks.get(&c.hash) else {
                continue;
            };
            let (Some(holder), Some(&first)) = (info.from, info.files.first()) else {
                continue;
            };
            if first != index || !seen.insert(c.hash) {
                continue;
            }
            match by_holder.iter_mut().find(|(h, _)| *h == holder) {
                Some((_, bytes)) => *bytes += u64::from(c.size),
                None => by_holder.push((holder, u64::from(c.size))),
            }
        }
        by_holder
    }

    /// Strict mode: fails, before anything is fetched for them, the files whose directory
    /// does not exist (they could never be written).
    pub(super) async fn fail_missing_dirs<S: Sink>(&mut self, log: &mut Log<'_, S>) {
        let parents: Vec<std::path::PathBuf> = self
            .spec
            .files
            .iter()
            .map(|f| {
                std::path::Path::new(&f.dest)
                    .parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default()
            })
            .collect();
        let missing = tokio::task::spawn_blocking(move || {
            let mut seen: HashMap<std::path::PathBuf, bool> = HashMap::new();
            parents
                .into_iter()
                .map(|p| *seen.entry(p.clone()).or_insert_with(|| !p.is_dir()))
                .collect::<Vec<bool>>()
        })
        .await
        .unwrap_or_default();
        for (index, parent_missing) in missing.into_iter().enumerate() {
            if !parent_missing {
                continue;
            }
            let dir = std::path::Path::new(&self.spec.files[index].dest)
                .parent()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let message = format!("target directory {dir} does not exist");
            self.fail_file(index, FileErrorCode::NoTargetDir, message, log)
                .await;
        }
    }

    async fn fail_file<S: Sink>(
        &mut self,
        index: usize,
        code: FileErrorCode,
        message: String,
        log: &mut Log<'_, S>,
    ) {
        self.files[index].status = FileStatus::Failed;
        let file = &self.spec.files[index];
        log.line(format!("failed {}: {message}", file.dest)).await;
        let error = FileError { code, message };
        // Nothing of a failed file is at its destination, whatever was downloaded for it.
        self.send(AgentMsg::FileProgress {
            key: self.ctx.key,
            files: vec![FileProgressEntry {
                index: index as u32,
                bytes: 0,
                speed: 0,
                done: false,
                error: Some(error.clone()),
                from: Vec::new(),
            }],
        });
        self.first_error.get_or_insert(error);
    }
}
