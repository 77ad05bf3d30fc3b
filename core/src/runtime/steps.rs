//! An instance's steps (LANGUAGE.md §6, §7.3–§7.5): run from its program
//! counter until the next wait, deferral or end — waits, `wait until`, `wait
//! up to … for`, sends (channel choice in `choose.rs`), conditions, splits.
//!
//! Promise: the steps of a journey's program, in order; both evaluators give
//! every condition the same answer (parity-tested), so the decisions are
//! those of the reference interpreter.

use super::*;

pub(super) fn instance_mut(profile: &mut Profile, journey: usize) -> Option<&mut Instance> {
    profile
        .journeys
        .get_mut(journey)
        .and_then(|s| s.active.as_deref_mut())
}

pub(super) fn set_pc(profile: &mut Profile, journey: usize, pc: usize) {
    if let Some(instance) = instance_mut(profile, journey) {
        instance.pc = pc;
    }
}

/// What a step reads (an `if` condition, a `wait until` time): the profile,
/// the instance's trigger snapshot and the clock; no event.
pub(super) fn step_env<'a>(
    program: &'a Program,
    profile: &'a Profile,
    trigger: &'a [Value],
    now: i64,
    divisions_by_zero: &'a Cell<u64>,
) -> Env<'a> {
    Env {
        trigger,
        ..event_env(program, profile, &[], now, profile.tz, divisions_by_zero)
    }
}

impl Core {
    pub(super) fn complete(
        &mut self,
        profile: &mut Profile,
        journey: usize,
        now: i64,
        out: &mut Vec<Decision>,
    ) {
        self.end_instance(profile, journey);
        out.push(self.decision(now, profile, journey, DecisionKind::Completed));
    }

    /// Runs an instance's steps from its current instruction until it waits, is
    /// deferred or ends. Jumps only go forward, so this terminates. Long by
    /// design: one arm per instruction, each a few lines or a call.
    pub(super) fn run(
        &mut self,
        profile: &mut Profile,
        j: usize,
        now: i64,
        out: &mut Vec<Decision>,
    ) {
        let jit = self.jit.clone();
        let program = Arc::clone(&self.program);
        let Some(journey) = program.journeys.get(j) else {
            return;
        };
        let tz = profile.tz;
        loop {
            let Some(instance) = profile.journeys.get(j).and_then(|s| s.active.as_ref()) else {
                return;
            };
            let pc = instance.pc;
            let Some(instr) = journey.code.get(pc) else {
                self.complete(profile, j, now, out);
                return;
            };
            match instr {
                Instr::Wait(d) => {
                    set_pc(profile, j, pc + 1);
                    self.schedule(profile, j, now.saturating_add(*d));
                    return;
                }
                Instr::WaitUntil(minutes) => {
                    set_pc(profile, j, pc + 1);
                    self.schedule(profile, j, time::next_local_time(tz, now, *minutes));
                    return;
                }
                Instr::WaitUntilExpr(e) => {
                    let env = step_env(
                        &program,
                        profile,
                        &instance.trigger,
                        now,
                        &self.divisions_by_zero,
                    );
                    let value = interp::eval(e, &env);
                    set_pc(profile, j, pc + 1);
                    // A checked program gives a present `time_of_day` here.
                    if let Value::Duration(d) = value {
                        let minutes = (d / crate::ir::NANOS_PER_MINUTE).clamp(0, 24 * 60 - 1);
                        self.schedule(profile, j, time::next_local_time(tz, now, minutes as u16));
                        return;
                    }
                }
                Instr::JumpUnless(cond, target) => {
                    let env = step_env(
                        &program,
                        profile,
                        &instance.trigger,
                        now,
                        &self.divisions_by_zero,
                    );
                    let next = if holds(jit.as_deref(), Site::Step(j, pc), cond, &env) {
                        pc + 1
                    } else {
                        *target
                    };
                    set_pc(profile, j, next);
                }
                Instr::Jump(target) => set_pc(profile, j, *target),
                Instr::Stop => {
                    self.complete(profile, j, now, out);
                    return;
                }
                Instr::Split { index, arms } => {
                    if let Flow::Waits = self.split(profile, j, pc, now, (*index, arms), out) {
                        return;
                    }
                }
                Instr::WaitFor { timeout, .. } => {
                    // The same instruction stays current: an event resumes it
                    // (§7.3 step 6), the timer times it out.
                    if let Some(instance) = instance_mut(profile, j) {
                        instance.waits_for = true;
                    }
                    self.schedule(profile, j, now.saturating_add(*timeout));
                    return;
                }
                Instr::Send {
                    template,
                    channels,
                    best,
                } => {
                    let send = (*template, channels.as_slice(), best.as_deref());
                    if let Flow::Waits = self.send(profile, j, pc, now, send, out) {
                        return;
                    }
                }
            }
        }
    }
}

/// What a step leaves its instance to do.
pub(super) enum Flow {
    /// Run the next step now.
    Next,
    /// Wait for a timer or an event, or end: the instance stops running.
    Waits,
}

impl Core {
    /// `split`: the profile's arm by its bucket (§7.5), remembered as the
    /// instance's first arm; a holdout ends the instance.
    fn split(
        &mut self,
        profile: &mut Profile,
        j: usize,
        pc: usize,
        now: i64,
        (index, arms): (u32, &[crate::ir::Arm]),
        out: &mut Vec<Decision>,
    ) -> Flow {
        let program = Arc::clone(&self.program);
        let Some(journey) = program.journeys.get(j) else {
            return Flow::Waits;
        };
        let h = split_bucket(&journey.name, index, &profile.id);
        let mut low = 0u64;
        let chosen = arms.iter().find(|a| {
            low += u64::from(a.percent);
            h < low
        });
        if let Some(arm) = chosen
            && let Some(instance) = instance_mut(profile, j)
            && instance.arm.is_none()
        {
            instance.arm = Some(arm.name.as_str().into());
            *self
                .arm_entries
                .entry((j, arm.name.as_str().into()))
                .or_insert(0) += 1;
            let number = instance.number;
            // (1.1) Conversions carry the arm too.
            if let Some(window) = profile.watches.as_mut().and_then(|w| {
                w.goals
                    .iter_mut()
                    .find(|w| w.journey as usize == j && w.number == number)
            }) {
                window.arm = Some(arm.name.as_str().into());
            }
        }
        match chosen {
            Some(arm) => match arm.target {
                Some(target) => set_pc(profile, j, target),
                None => {
                    let arm = Rc::from(arm.name.as_str());
                    let holdout = DecisionKind::Holdout { arm };
                    out.push(self.decision(now, profile, j, holdout));
                    self.complete(profile, j, now, out);
                    return Flow::Waits;
                }
            },
            // Percentages add up to 100 in a checked program.
            None => set_pc(profile, j, pc + 1),
        }
        Flow::Next
    }

    /// `send`: a channel chosen (§7.4), then the send, its suppression or its
    /// deferral (the same step runs again at `until`).
    fn send(
        &mut self,
        profile: &mut Profile,
        j: usize,
        pc: usize,
        now: i64,
        (template, channels, best): (usize, &[usize], Option<&[crate::ir::Engagement]>),
        out: &mut Vec<Decision>,
    ) -> Flow {
        let program = Arc::clone(&self.program);
        let (Some(journey), Some(instance)) = (
            program.journeys.get(j),
            profile.journeys.get(j).and_then(|s| s.active.as_ref()),
        ) else {
            return Flow::Waits;
        };
        let tz = profile.tz;
        let number = instance.number;
        let arm: Option<Rc<str>> = instance.arm.as_deref().map(Rc::from);
        let outcome = choose::choose(
            &choose::Context {
                program: &program,
                names: &self.names,
                journey,
                journey_index: j,
                now,
                tz,
                divisions_by_zero: &self.divisions_by_zero,
                explain: self.explain,
            },
            profile,
            &instance.trigger,
            template,
            channels,
            best,
        );
        let template_name = name(&self.names.templates, template);
        match outcome {
            choose::Choice::Send {
                channel,
                content,
                why,
            } => {
                let message_id = message_id(&profile.id, &journey.name, number, pc);
                self.remember_send(profile, j, journey, (template, channel), now);
                let send = DecisionKind::Send {
                    template: template_name,
                    channel: name(&self.names.channels, channel),
                    message_id,
                    content,
                    arm,
                    why,
                };
                out.push(self.decision(now, profile, j, send));
                set_pc(profile, j, pc + 1);
            }
            choose::Choice::Suppressed(reasons, why, caps) => {
                for cap in caps {
                    *self.cap_suppressions.entry((j, cap)).or_insert(0) += 1;
                }
                let suppressed = DecisionKind::Suppressed {
                    template: template_name,
                    reasons,
                    arm,
                    why,
                };
                out.push(self.decision(now, profile, j, suppressed));
                set_pc(profile, j, pc + 1);
            }
            choose::Choice::Defer(until, reasons, why) => {
                let deferred = DecisionKind::Deferred {
                    template: template_name,
                    until,
                    reasons,
                    arm,
                    why,
                };
                out.push(self.decision(now, profile, j, deferred));
                // The same step runs again, from scratch, at `until`.
                self.schedule(profile, j, until);
                return Flow::Waits;
            }
        }
        Flow::Next
    }

    /// A send's place in the profile's history: in the cap window (unless it
    /// is transactional) and, (1.1), as a `sent` event.
    fn remember_send(
        &mut self,
        profile: &mut Profile,
        j: usize,
        journey: &crate::ir::Journey,
        (template, channel): (usize, usize),
        now: i64,
    ) {
        let horizon = now.saturating_sub(self.send_retention);
        while profile.sends.front().is_some_and(|s| s.at <= horizon) {
            profile.sends.pop_front();
        }
        // A receipt never uses up a marketing message's place
        // (LANGUAGE.md §6, 1.1): transactional sends count
        // toward no cap, so they are not in the cap history.
        if !journey.transactional {
            profile.sends.push_back(state::Sent {
                at: now,
                channel: channel as u32,
                journey: self.program.lineage(j) as u32,
            });
        }
        // (1.1) The send is a `sent` event from now on.
        self.record_sent(profile, journey, template, channel, now);
    }
}
