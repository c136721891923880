#!/usr/bin/env escript
%% S10: start_child, restart_child, terminate_child, delete_child: results and errors;
%% which_children and count_children.
-module(sup_child_calls).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    {ok, _} = supervisor:start_link({local, sup}, ?MODULE, {#{}, [spec(a), spec(b)]}),
    show("start_child a", supervisor:start_child(sup, spec(a))),
    show("start_child c", supervisor:start_child(sup, spec(c))),
    show("start_child e", supervisor:start_child(sup, #{id => e, start => {?MODULE, start_failing, [e, nope]}})),
    which(sup),
    show("restart_child a", supervisor:restart_child(sup, a)),
    show("restart_child z", supervisor:restart_child(sup, z)),
    show("delete_child a", supervisor:delete_child(sup, a)),
    show("terminate_child a", supervisor:terminate_child(sup, a)),
    show("terminate_child a", supervisor:terminate_child(sup, a)),
    show("terminate_child z", supervisor:terminate_child(sup, z)),
    show("start_child a", supervisor:start_child(sup, spec(a))),
    which(sup),
    count(sup),
    show("restart_child a", supervisor:restart_child(sup, a)),
    show("terminate_child c", supervisor:terminate_child(sup, c)),
    show("delete_child c", supervisor:delete_child(sup, c)),
    show("delete_child c", supervisor:delete_child(sup, c)),
    show("restart_child c", supervisor:restart_child(sup, c)),
    show("start_child x", supervisor:start_child(sup, spec(x, #{restart => temporary}))),
    show("terminate_child x", supervisor:terminate_child(sup, x)),
    show("restart_child x", supervisor:restart_child(sup, x)),
    which(sup),
    count(sup),
    stop(sup).
