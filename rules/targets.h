// The targets: one header each under rules/targets/ (see module.h for what
// one holds), and the registry that makes them known. To add a target,
// write its header and add it to both lists below.
#pragma once

#include "rules/targets/connmark.h"
#include "rules/targets/checksum.h"
#include "rules/targets/ct.h"
#include "rules/targets/log.h"
#include "rules/targets/mark.h"
#include "rules/targets/masquerade.h"
#include "rules/targets/nat.h"
#include "rules/targets/nflog.h"
#include "rules/targets/notrack.h"
#include "rules/targets/redirect.h"
#include "rules/targets/reject.h"
#include "rules/targets/standard.h"
#include "rules/targets/tcpmss.h"
#include "rules/targets/tos.h"
#include "rules/targets/trace.h"

namespace nfb {

/// Every target, in the order of the Target variant. The first seven are
/// the standard ones the reader resolves itself; the rest are found by
/// name (`-j NAME`).
using TargetModules =
    TypeList<NoTarget, AcceptTarget, DropTarget, RejectTarget, ReturnTarget, JumpTarget, GotoTarget, DnatTarget,
             SnatTarget, MasqueradeTarget, RedirectTarget, LogTarget, MarkTarget, ConnmarkTarget, NotrackTarget,
             CtTarget, TraceTarget, NflogTarget, ChecksumTarget, TosTarget, DscpTarget, TcpmssTarget>;

/// A rule's target (NoTarget when there is no -j/-g).
using Target = VariantOf<TargetModules>::type;

}  // namespace nfb
