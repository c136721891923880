#!/usr/bin/env escript
%% Nested supervisors: an inner supervisor that gives up exits with shutdown; its parent
%% restarts it (permanent) and counts it in its own intensity. Stop order is depth first,
%% reverse start order at each level. A child added with start_child is lost when its
%% supervisor restarts (S10).
-module(sup_nested).
-include("sup_common.hrl").
-include("trace.hrl").
scenario() ->
    setup(),
    Inner = #{id => inner, type => supervisor,
              start => {?MODULE, start_sup, [inner, #{intensity => 0}, [spec(i1), spec(i2)]]}},
    {ok, _} = supervisor:start_link({local, outer}, ?MODULE,
                                    {#{strategy => one_for_one}, [spec(o1), Inner, spec(o2)]}),
    show("start_child i3", supervisor:start_child(inner, spec(i3))),
    crash(i2, boom, inner),
    sync(outer),
    which(outer),
    which(inner),
    stop(outer).
