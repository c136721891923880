#!/usr/bin/env escript
%% S3, S12: the dynamic supervisor (simple_one_for_one): children by pid, the extra argument
%% passed to the start, restarted in place, no restart_child; the children stop together.
-module(sup_dynamic).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    Spec = #{id => ignored, start => {?MODULE, start_dyn, [plain]}},
    {ok, _} = supervisor:start_link({local, dsup}, ?MODULE,
                                    {#{strategy => simple_one_for_one, intensity => 3}, [Spec]}),
    show("start_child d1", supervisor:start_child(dsup, [d1])),
    show("start_child d2", supervisor:start_child(dsup, [d2])),
    count_dyn(dsup),
    crash(d1, boom, dsup),
    count_dyn(dsup),
    show("terminate_child d2", supervisor:terminate_child(dsup, whereis(d2))),
    show("terminate_child d2", supervisor:terminate_child(dsup, self())),
    count_dyn(dsup),
    stop(dsup).
