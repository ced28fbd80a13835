// The cluster under failures, black box: a node killed with -9, a node frozen
// with SIGSTOP, a router stopped with SIGTERM while requests are in flight.
// Every request must get exactly one reply within its deadline.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster_fixture.h"

namespace todo::testing {
namespace {

using Clock = std::chrono::steady_clock;
using ClusterFailureTest = ClusterTest;

// Short deadlines keep the suite fast; the slack absorbs a loaded machine.
constexpr int kTimeoutMs = 1500;
constexpr Millis kDeadline(kTimeoutMs);
constexpr Millis kSlack(1500);

Millis Since(Clock::time_point t) { return std::chrono::duration_cast<Millis>(Clock::now() - t); }

// A request sent by a Tracker.
struct Sent {
  Clock::time_point at;
  std::string kind;   // what the test calls it ("victim", "other", ...)
  std::string list;   // "" if none
  std::string title;  // for add_entry
};

// A reply matched to its request.
struct Got {
  uint64_t id = 0;
  Sent sent;
  Reply reply;
  Millis elapsed{0};
};

// One DEALER client that numbers its requests and matches replies to them.
// A reply without a uint id, with an id never sent, or with an id already
// answered is a test failure: every request gets exactly one reply.
class Tracker {
 public:
  explicit Tracker(const std::string& endpoint) : client_(endpoint) {}

  uint64_t Send(const Map& request, const std::string& kind, const std::string& list = "",
                const std::string& title = "") {
    const uint64_t id = ++next_id_;
    EXPECT_TRUE(client_.Send(WithId(request, id))) << "send failed";
    outstanding_[id] = Sent{Clock::now(), kind, list, title};
    return id;
  }

  // Waits up to `wait` for a reply, then takes every reply already there.
  std::vector<Got> Poll(Millis wait) {
    std::vector<Got> out;
    auto reply = client_.Recv(wait);
    while (reply) {
      Take(std::move(*reply), &out);
      reply = client_.Recv(Millis(0));
    }
    return out;
  }

  // Polls until nothing is outstanding or `overall` passes.
  std::vector<Got> Drain(Millis overall) {
    std::vector<Got> out;
    const auto deadline = Clock::now() + overall;
    while (!outstanding_.empty() && Clock::now() < deadline) {
      auto got = Poll(std::min(Millis(50), std::max(Millis(0), Left(deadline))));
      out.insert(out.end(), got.begin(), got.end());
    }
    return out;
  }

  size_t outstanding() const { return outstanding_.size(); }
  size_t answered() const { return answered_.size(); }
  std::string OutstandingText() const {
    std::string s;
    for (const auto& [id, sent] : outstanding_) {
      s += " " + std::to_string(id) + "(" + sent.kind + ", " +
           std::to_string(Since(sent.at).count()) + " ms ago)";
    }
    return s;
  }

 private:
  static Millis Left(Clock::time_point deadline) {
    return std::chrono::duration_cast<Millis>(deadline - Clock::now());
  }

  void Take(Reply reply, std::vector<Got>* out) {
    auto id = AsUint(reply.Get("id"));
    if (!id) {
      ADD_FAILURE() << "reply without a uint id: " << reply.ToString();
      return;
    }
    if (answered_.count(*id) != 0) {
      ADD_FAILURE() << "second reply to request " << *id << ": " << reply.ToString();
      return;
    }
    auto it = outstanding_.find(*id);
    if (it == outstanding_.end()) {
      ADD_FAILURE() << "reply to a request never sent: " << reply.ToString();
      return;
    }
    Got got{*id, it->second, std::move(reply), Since(it->second.at)};
    outstanding_.erase(it);
    answered_.insert(*id);
    out->push_back(std::move(got));
  }

  Client client_;
  uint64_t next_id_ = 0;
  std::map<uint64_t, Sent> outstanding_;
  std::set<uint64_t> answered_;
};

std::string CodeOf(const Reply& r) { return r.ok() ? "ok" : r.error_code(); }

std::string CountsText(const std::map<std::string, int>& counts) {
  std::string s;
  for (const auto& [code, n] : counts) s += " " + code + "=" + std::to_string(n);
  return s;
}

// Lists owned by every node but `victim`, `per_node` each.
std::vector<std::string> OtherLists(Cluster& cluster, size_t victim, const std::string& prefix,
                                    size_t per_node) {
  std::vector<std::string> out;
  for (size_t i = 0; i < cluster.node_count(); ++i) {
    if (i == victim) continue;
    auto lists = cluster.ListsOwnedBy(cluster.node(i).name, prefix, per_node);
    out.insert(out.end(), lists.begin(), lists.end());
  }
  return out;
}

TEST_F(ClusterFailureTest, KillNineMakesListsUnavailableAndRestartKeepsAcknowledgedWrites) {
  const int r = cluster_->StartRouterToAll({"--timeout-ms", std::to_string(kTimeoutMs)});
  ASSERT_GE(r, 0);
  const std::string router = cluster_->router(r).endpoint;
  const size_t victim = 1;
  ClusterNode& vnode = cluster_->node(victim);
  const std::vector<std::string> vlists = cluster_->ListsOwnedBy(vnode.name, "kill-v", 4);
  const std::vector<std::string> olists = OtherLists(*cluster_, victim, "kill-o", 2);

  // What the client was told was written: list -> title -> entry.
  std::map<std::string, std::map<std::string, WireEntry>> acked;
  // Titles whose add timed out: applied or not, either is right. An entry
  // neither acknowledged nor timed out (refused) must not be there.
  std::set<std::string> unknown;
  {
    Client c(router);
    for (const std::string& list : vlists) {
      for (int k = 0; k < 5; ++k) {
        const std::string title = list + " acked " + std::to_string(k);
        const uint64_t id = AddOk(c, list, "2026-09-01", title);
        acked[list][title] = WireEntry{id, "2026-09-01", title};
      }
    }
  }

  // A pipelined burst to the victim's lists. Once some of it is answered,
  // freeze the node, send a few more (surely in flight: the node can't
  // answer them), wait until the router has read them (a ping after them is
  // answered), then kill -9.
  Tracker burst(router);
  std::map<std::string, int> burst_codes, frozen_codes;
  auto check_burst = [&](const std::vector<Got>& gots) {
    for (const Got& g : gots) {
      if (g.sent.kind == "barrier") {
        EXPECT_TRUE(g.reply.ok()) << g.reply.ToString();
        continue;
      }
      const std::string code = CodeOf(g.reply);
      ++(g.sent.kind == "frozen" ? frozen_codes : burst_codes)[code];
      EXPECT_LE(g.elapsed, kDeadline + kSlack) << "reply late: " << g.reply.ToString();
      if (code == "ok" && g.sent.kind == "burst") {
        auto id = AsUint(MapGet(g.reply.result(), "id"));
        ASSERT_TRUE(id.has_value()) << g.reply.ToString();
        acked[g.sent.list][g.sent.title] = WireEntry{*id, "2026-09-02", g.sent.title};
      } else if (code == "timeout") {
        unknown.insert(g.sent.title);
      } else if (code != "unavailable") {
        ADD_FAILURE() << g.sent.kind << " request in flight at kill -9 answered "
                      << g.reply.ToString();
        unknown.insert(g.sent.title);
      }
    }
  };
  for (int i = 0; i < 300; ++i) {
    const std::string& list = vlists[i % vlists.size()];
    const std::string title = list + " burst " + std::to_string(i);
    burst.Send(AddReq(list, "2026-09-02", title), "burst", list, title);
  }
  for (auto t0 = Clock::now(); burst.answered() < 30 && Since(t0) < kCallTimeout;) {
    check_burst(burst.Poll(Millis(1)));
  }
  ASSERT_TRUE(vnode.process->Freeze());
  for (int i = 0; i < 20; ++i) {
    const std::string& list = vlists[i % vlists.size()];
    const std::string title = list + " frozen " + std::to_string(i);
    burst.Send(AddReq(list, "2026-09-02", title), "frozen", list, title);
  }
  const uint64_t barrier = burst.Send({{"op", "ping"}}, "barrier");
  bool barrier_seen = false;
  for (auto t0 = Clock::now(); !barrier_seen && Since(t0) < kCallTimeout;) {
    std::vector<Got> gots = burst.Poll(Millis(5));
    for (const Got& g : gots) barrier_seen = barrier_seen || g.id == barrier;
    check_burst(gots);
  }
  ASSERT_TRUE(barrier_seen) << "router did not answer ping";
  const size_t in_flight = burst.outstanding();
  const auto t_kill = Clock::now();
  vnode.process->Kill9();

  // Probe a victim list and an other list every 25 ms until the victim's
  // list is answered `unavailable`.
  Tracker probes(router);
  std::map<std::string, int> victim_codes;
  std::optional<Millis> first_unavailable;
  auto check_probes = [&](const std::vector<Got>& gots) {
    for (const Got& g : gots) {
      const std::string code = CodeOf(g.reply);
      EXPECT_LE(g.elapsed, kDeadline + kSlack) << "probe reply late: " << g.reply.ToString();
      if (g.sent.kind == "other") {
        EXPECT_TRUE(g.reply.ok()) << "list " << g.sent.list
                                  << " on a live node: " << g.reply.ToString();
        continue;
      }
      ++victim_codes[code];
      EXPECT_TRUE(code == "unavailable" || code == "timeout")
          << "request for a list of the killed node, sent "
          << Since(t_kill).count() - g.elapsed.count() << " ms after kill -9, answered "
          << g.reply.ToString();
      if (code == "unavailable" && !first_unavailable) first_unavailable = Since(t_kill);
    }
  };
  auto next_probe = Clock::now();
  size_t round = 0;
  while (!first_unavailable && Since(t_kill) < Millis(15000)) {
    if (Clock::now() >= next_probe) {
      probes.Send(EntriesReq(vlists[0]), "victim", vlists[0]);
      const std::string& other = olists[round++ % olists.size()];
      probes.Send(EntriesReq(other), "other", other);
      next_probe += Millis(25);
    }
    check_probes(probes.Poll(Millis(5)));
    check_burst(burst.Poll(Millis(0)));
  }
  ASSERT_TRUE(first_unavailable.has_value())
      << "no `unavailable` within 15 s of kill -9; victim probes:" << CountsText(victim_codes);
  std::cout << "[ kill -9 ] first `unavailable` " << first_unavailable->count()
            << " ms after kill -9; victim probes:" << CountsText(victim_codes) << "\n";

  // From now on its lists are refused at once, well before the deadline.
  // (In every framing, with the id echoed.)
  for (Client::Mode mode :
       {Client::Mode::kDealer, Client::Mode::kDealerWithDelimiter, Client::Mode::kReq}) {
    Client refused_client(router, mode);
    for (int k = 0; k < 2; ++k) {
      const std::string title = std::string("refused ") + ModeName(mode) + std::to_string(k);
      const auto t = Clock::now();
      Reply reply = MustCall(refused_client,
                             WithId(AddReq(vlists[k % vlists.size()], "2026-09-03", title), "r"));
      ExpectReplyFraming(mode, reply);
      ExpectError(reply, "unavailable");
      EXPECT_EQ(AsStr(reply.Get("id")), std::optional<std::string>("r")) << reply.ToString();
      EXPECT_LT(Since(t), kDeadline) << "unavailable came only at the deadline";
    }
  }

  check_probes(probes.Drain(kDeadline + kSlack));
  check_burst(burst.Drain(kDeadline + kSlack));
  EXPECT_EQ(probes.outstanding(), 0u) << "unanswered probes:" << probes.OutstandingText();
  EXPECT_EQ(burst.outstanding(), 0u) << "unanswered burst requests:" << burst.OutstandingText();
  std::cout << "[ kill -9 ] " << in_flight
            << " requests in flight at kill -9; burst of 300:" << CountsText(burst_codes)
            << "; 20 sent to it frozen:" << CountsText(frozen_codes) << "\n";

  // Restart on the same port and data dir: its lists serve again.
  const auto t_restart = Clock::now();
  ASSERT_TRUE(cluster_->StartNode(victim));
  ASSERT_TRUE(cluster_->WaitRoutesTo(router, victim, Millis(20000)))
      << "the restarted node's lists are not served again within 20 s";
  std::cout << "[ kill -9 ] lists served again " << Since(t_restart).count()
            << " ms after the restart began\n";

  Client c(router);
  for (const std::string& list : vlists) {
    SCOPED_TRACE(list);
    std::vector<WireEntry> entries = EntriesOk(c, list);
    std::map<std::string, WireEntry> present;
    uint64_t max_id = 0;
    for (const WireEntry& e : entries) {
      present[e.title] = e;
      max_id = std::max(max_id, e.id);
      EXPECT_TRUE(acked[list].count(e.title) != 0 || unknown.count(e.title) != 0)
          << "entry " << e.title << " was refused or never sent, yet it is there";
    }
    for (const auto& [title, e] : acked[list]) {
      auto it = present.find(title);
      ASSERT_NE(it, present.end()) << "acknowledged entry lost: " << title;
      EXPECT_EQ(it->second, e);
    }
    // Ids are not reused after the restart.
    EXPECT_GT(AddOk(c, list, "2026-09-04", "after restart"), max_id);
  }
  for (const std::string& list : olists) EXPECT_EQ(EntriesOk(c, list).size(), 0u) << list;
}

TEST_F(ClusterFailureTest, FrozenNodeGetsTimeoutsAtTheDeadlineAndNoLateDuplicates) {
  const int r = cluster_->StartRouterToAll({"--timeout-ms", std::to_string(kTimeoutMs)});
  ASSERT_GE(r, 0);
  const std::string router = cluster_->router(r).endpoint;
  const size_t victim = 2;
  ClusterNode& vnode = cluster_->node(victim);
  const std::vector<std::string> vlists = cluster_->ListsOwnedBy(vnode.name, "freeze-v", 4);
  const std::vector<std::string> olists = OtherLists(*cluster_, victim, "freeze-o", 2);

  Tracker t(router);
  ASSERT_TRUE(vnode.process->Freeze());
  const auto t_stop = Clock::now();
  for (int i = 0; i < 20; ++i) {
    const std::string& list = vlists[i % vlists.size()];
    t.Send(AddReq(list, "2026-10-01", "frozen " + std::to_string(i)), "victim", list);
  }
  for (int i = 0; i < 20; ++i) {
    const std::string& list = olists[i % olists.size()];
    t.Send(AddReq(list, "2026-10-01", "alive " + std::to_string(i)), "other", list);
  }
  // The router's own `timeout` replies are framed like the requests.
  Client delimited(router, Client::Mode::kDealerWithDelimiter);
  Client req(router, Client::Mode::kReq);
  ASSERT_TRUE(delimited.Send(WithId(EntriesReq(vlists[1]), "d")));
  ASSERT_TRUE(req.Send(WithId(EntriesReq(vlists[2]), "q")));
  std::map<std::string, int> codes;
  Millis min_timeout(1000000), max_timeout(0);
  for (const Got& g : t.Drain(kDeadline + kSlack + Millis(1000))) {
    if (g.sent.kind == "other") {
      EXPECT_TRUE(g.reply.ok()) << g.reply.ToString();
      continue;
    }
    ++codes[CodeOf(g.reply)];
    ExpectError(g.reply, "timeout");
    // The router's deadline starts when it reads the request, after we sent it.
    EXPECT_GE(g.elapsed, kDeadline - Millis(10)) << "timeout before the deadline";
    EXPECT_LE(g.elapsed, kDeadline + kSlack) << "timeout long after the deadline";
    min_timeout = std::min(min_timeout, g.elapsed);
    max_timeout = std::max(max_timeout, g.elapsed);
  }
  ASSERT_EQ(t.outstanding(), 0u) << "unanswered:" << t.OutstandingText();
  for (auto [client, id] : {std::pair<Client*, const char*>{&delimited, "d"}, {&req, "q"}}) {
    auto reply = client->Recv(kSlack);
    ASSERT_TRUE(reply.has_value()) << ModeName(client->mode()) << ": no timeout reply";
    ExpectReplyFraming(client->mode(), *reply);
    ExpectError(*reply, "timeout");
    EXPECT_EQ(AsStr(reply->Get("id")), std::optional<std::string>(id)) << reply->ToString();
  }
  std::cout << "[ SIGSTOP ] 20 requests to the frozen node:" << CountsText(codes) << ", after "
            << min_timeout.count() << ".." << max_timeout.count() << " ms (deadline " << kTimeoutMs
            << " ms)\n";

  // Silent for --down-after-ms, it is marked down: `unavailable` at once.
  std::optional<Millis> down_after;
  std::map<std::string, int> probe_codes;
  while (!down_after && Since(t_stop) < Millis(15000)) {
    t.Send(EntriesReq(vlists[0]), "probe", vlists[0]);
    for (const Got& g : t.Poll(Millis(100))) {
      const std::string code = CodeOf(g.reply);
      ++probe_codes[code];
      EXPECT_TRUE(code == "timeout" || code == "unavailable") << g.reply.ToString();
      if (code == "unavailable" && !down_after) down_after = Since(t_stop);
    }
  }
  ASSERT_TRUE(down_after.has_value())
      << "frozen node never marked down:" << CountsText(probe_codes);
  // --down-after-ms is 2000 (default): marked down within about that.
  EXPECT_LE(*down_after, Millis(2000) + kSlack) << "frozen node marked down late";
  std::cout << "[ SIGSTOP ] first `unavailable` " << down_after->count()
            << " ms after SIGSTOP; probes:" << CountsText(probe_codes) << "\n";

  // Thaw. The node now answers its backlog; the router must drop those late
  // replies. Probe until it serves again, then keep draining a while.
  ASSERT_TRUE(vnode.process->Signal(SIGCONT));
  const auto t_cont = Clock::now();
  std::optional<Millis> back_after;
  auto last_probe = Clock::now() - Millis(1000);
  while (Since(t_cont) < Millis(20000)) {
    if (!back_after && Since(last_probe) >= Millis(50)) {
      t.Send(EntriesReq(vlists[0]), "probe", vlists[0]);
      last_probe = Clock::now();
    }
    for (const Got& g : t.Poll(Millis(20))) {
      EXPECT_LE(g.elapsed, kDeadline + kSlack) << g.reply.ToString();
      const std::string code = CodeOf(g.reply);
      EXPECT_TRUE(code == "ok" || code == "timeout" || code == "unavailable") << g.reply.ToString();
      if (g.reply.ok() && !back_after) back_after = Since(t_cont);
    }
    // Drain 2 s after it is back: late replies would show up as duplicates.
    if (back_after && Since(t_cont) > *back_after + Millis(2000) && t.outstanding() == 0) break;
  }
  ASSERT_TRUE(back_after.has_value()) << "the thawed node's lists are not served again";
  EXPECT_EQ(t.outstanding(), 0u) << "unanswered:" << t.OutstandingText();
  // The node did apply (and answer) the timed-out adds after SIGCONT, so
  // late replies really reached the router and were dropped there.
  Client c(router);
  size_t applied = 0;
  for (const std::string& list : vlists) applied += EntriesOk(c, list).size();
  EXPECT_GT(applied, 0u) << "no timed-out add was applied: the no-duplicate check proved nothing";
  std::cout << "[ SIGSTOP ] served again " << back_after->count() << " ms after SIGCONT; "
            << t.answered() << " requests, each answered once; " << applied
            << " of the 20 timed-out adds applied after SIGCONT (late replies dropped)\n";
}

TEST_F(ClusterFailureTest, MaxInflightAnswersOverloadedAtOnceAndAppliesNothing) {
  constexpr int kMaxInflight = 10;
  const int r = cluster_->StartRouterToAll(
      {"--timeout-ms", std::to_string(kTimeoutMs), "--max-inflight", std::to_string(kMaxInflight)});
  ASSERT_GE(r, 0);
  const std::string router = cluster_->router(r).endpoint;
  ClusterNode& vnode = cluster_->node(0);
  const std::string list = cluster_->ListsOwnedBy(vnode.name, "inflight", 1)[0];

  // The node is frozen: the first 10 requests stay in flight until their
  // deadline, the other 20 find the router full.
  ASSERT_TRUE(vnode.process->Freeze());
  Tracker t(router);
  for (int i = 1; i <= 3 * kMaxInflight; ++i) {
    t.Send(AddReq(list, "2026-12-01", "req " + std::to_string(i)), "add", list,
           "req " + std::to_string(i));
  }
  std::set<std::string> maybe_applied;
  for (const Got& g : t.Drain(kDeadline + kSlack)) {
    if (g.id <= static_cast<uint64_t>(kMaxInflight)) {
      ExpectError(g.reply, "timeout");
      EXPECT_GE(g.elapsed, kDeadline - Millis(10)) << g.reply.ToString();
      maybe_applied.insert(g.sent.title);
    } else {
      ExpectError(g.reply, "overloaded");
      EXPECT_LT(g.elapsed, kDeadline) << "overloaded only at the deadline: " << g.reply.ToString();
    }
  }
  EXPECT_EQ(t.outstanding(), 0u) << "unanswered:" << t.OutstandingText();

  ASSERT_TRUE(vnode.process->Signal(SIGCONT));
  ASSERT_TRUE(cluster_->WaitRoutesTo(router, 0, Millis(20000)));
  Client c(router);
  for (const WireEntry& e : EntriesOk(c, list)) {
    EXPECT_EQ(maybe_applied.count(e.title), 1u) << "refused request applied: " << e.title;
  }
}

TEST_F(ClusterFailureTest, MaxInflightMbAnswersOverloadedAtOnceAndAppliesNothing) {
  // The bytes of the requests in flight are bounded too (bodies and
  // envelopes): 1 MiB holds ~17 requests padded to 60 KB.
  const int r = cluster_->StartRouterToAll(
      {"--timeout-ms", std::to_string(kTimeoutMs), "--max-inflight-mb", "1"});
  ASSERT_GE(r, 0);
  const std::string router = cluster_->router(r).endpoint;
  ClusterNode& vnode = cluster_->node(0);
  const std::string list = cluster_->ListsOwnedBy(vnode.name, "inflight-mb", 1)[0];

  ASSERT_TRUE(vnode.process->Freeze());
  Tracker t(router);
  constexpr int kRequests = 30;
  for (int i = 1; i <= kRequests; ++i) {
    Map req = AddReq(list, "2026-12-01", "req " + std::to_string(i));
    req.emplace_back("pad", std::string(60000, 'p'));
    t.Send(req, "add", list, "req " + std::to_string(i));
  }
  std::set<std::string> maybe_applied;
  int timeouts = 0, overloaded = 0;
  for (const Got& g : t.Drain(kDeadline + kSlack)) {
    if (g.reply.error_code() == "timeout") {
      ++timeouts;
      maybe_applied.insert(g.sent.title);
    } else {
      ExpectError(g.reply, "overloaded");
      EXPECT_NE(g.reply.error_message().find("(--max-inflight-mb)"), std::string::npos)
          << g.reply.ToString();
      EXPECT_LT(g.elapsed, kDeadline) << "overloaded only at the deadline: " << g.reply.ToString();
      ++overloaded;
    }
  }
  EXPECT_EQ(t.outstanding(), 0u) << "unanswered:" << t.OutstandingText();
  EXPECT_GE(timeouts, 10) << "the budget refused requests it had room for";
  EXPECT_LE(timeouts, 20) << "the budget let more than 1 MiB in";
  EXPECT_EQ(timeouts + overloaded, kRequests);

  ASSERT_TRUE(vnode.process->Signal(SIGCONT));
  ASSERT_TRUE(cluster_->WaitRoutesTo(router, 0, Millis(20000)));
  Client c(router);
  for (const WireEntry& e : EntriesOk(c, list)) {
    EXPECT_EQ(maybe_applied.count(e.title), 1u) << "refused request applied: " << e.title;
  }
}

TEST_F(ClusterFailureTest, SigtermOnRouterAnswersRequestsInFlightThenExitsZero) {
  constexpr int kRouterTimeoutMs = 4000;
  const int r = cluster_->StartRouterToAll({"--timeout-ms", std::to_string(kRouterTimeoutMs)});
  ASSERT_GE(r, 0);
  ClusterRouter& router = cluster_->router(r);
  const size_t slow = 0;
  ClusterNode& snode = cluster_->node(slow);
  const std::vector<std::string> slists = cluster_->ListsOwnedBy(snode.name, "term-s", 4);
  const std::vector<std::string> olists = OtherLists(*cluster_, slow, "term-o", 2);

  // Freeze one node so that requests to it are surely in flight.
  ASSERT_TRUE(snode.process->Signal(SIGSTOP));
  Tracker t(router.endpoint);
  std::map<std::string, size_t> slow_adds;
  for (int i = 0; i < 50; ++i) {
    const std::string& list = slists[i % slists.size()];
    ++slow_adds[list];
    t.Send(AddReq(list, "2026-11-01", "slow " + std::to_string(i)), "slow", list);
    const std::string& other = olists[i % olists.size()];
    t.Send(AddReq(other, "2026-11-01", "fast " + std::to_string(i)), "fast", other);
  }
  // A ping after them: once it is answered, the router has read them all.
  const uint64_t barrier = t.Send({{"op", "ping"}}, "barrier");
  std::vector<Got> got;
  bool barrier_seen = false;
  const auto t_barrier = Clock::now();
  while (!barrier_seen && Since(t_barrier) < kCallTimeout) {
    for (Got& g : t.Poll(Millis(50))) {
      if (g.id == barrier) barrier_seen = true;
      got.push_back(std::move(g));
    }
  }
  ASSERT_TRUE(barrier_seen) << "router did not answer the ping";
  ASSERT_GT(t.outstanding(), 0u) << "nothing left in flight to test the drain with";
  const size_t in_flight = t.outstanding();

  ASSERT_TRUE(router.process->Signal(SIGTERM));
  const auto t_term = Clock::now();
  ASSERT_TRUE(snode.process->Signal(SIGCONT));
  auto status = router.process->WaitExit(Millis(kRouterTimeoutMs) + Millis(10000));
  ASSERT_TRUE(status.has_value()) << "router still running " << Since(t_term).count()
                                  << " ms after SIGTERM";
  const Millis exit_after = Since(t_term);
  EXPECT_TRUE(status->exited() && status->code() == 0)
      << "router ended with " << status->ToString();

  std::vector<Got> rest = t.Drain(Millis(3000));
  got.insert(got.end(), rest.begin(), rest.end());
  EXPECT_EQ(t.outstanding(), 0u) << "requests in flight at SIGTERM never answered:"
                                 << t.OutstandingText();
  std::map<std::string, int> codes;
  for (const Got& g : got) {
    if (g.id == barrier) continue;
    ++codes[g.sent.kind + ":" + CodeOf(g.reply)];
    // The frozen node was continued right after SIGTERM, well within the
    // deadline: the router must wait for and forward its replies.
    EXPECT_TRUE(g.reply.ok()) << g.sent.kind << " request: " << g.reply.ToString();
  }
  std::cout << "[ SIGTERM ] " << in_flight << " in flight at SIGTERM; replies:" << CountsText(codes)
            << "; router exited " << exit_after.count() << " ms after SIGTERM\n";
  // The data is there: every slow add was applied once, in order.
  const int r2 = cluster_->StartRouterToAll();
  ASSERT_GE(r2, 0);
  Client c(cluster_->router(r2).endpoint);
  for (const std::string& list : slists) {
    std::vector<WireEntry> entries = EntriesOk(c, list);
    EXPECT_EQ(entries.size(), slow_adds[list]) << list;
  }
}

}  // namespace
}  // namespace todo::testing
