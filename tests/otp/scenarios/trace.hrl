%% The Erlang half of the OTP scenario harness (xsactor/testing/otp.py is the Python half).
%% An escript includes this file and defines scenario/0; trace(Parts) prints one line
%% "T <parts>" rendered as xsactor.testing.otp.fmt renders the Python terms.

-compile([nowarn_unused_function]).

main(_) ->
    logger:set_primary_config(level, none),
    scenario(),
    halt(0).

trace(Parts) when is_list(Parts) ->
    io:format("T ~s~n", [lists:join(" ", [fmt(P) || P <- Parts])]).

fmt(true) -> "true";
fmt(false) -> "false";
fmt(A) when is_atom(A) -> atom_to_list(A);
fmt(I) when is_integer(I) -> integer_to_list(I);
fmt(P) when is_pid(P) -> "<pid>";
fmt(R) when is_reference(R) -> "<ref>";
fmt({R, [Frame | _]}) when is_tuple(Frame), tuple_size(Frame) =:= 4 -> "crash:" ++ fmt(R);
fmt(T) when is_tuple(T) -> "{" ++ lists:join(",", [fmt(E) || E <- tuple_to_list(T)]) ++ "}";
fmt([]) -> "[]";
fmt(L) when is_list(L) ->
    case io_lib:printable_list(L) of
        true -> L;
        false -> "[" ++ lists:join(",", [fmt(E) || E <- L]) ++ "]"
    end.

%% Helpers shared by scenarios.
flush() ->
    receive M -> [M | flush()] after 0 -> [] end.

wait_down(Pid) ->
    receive {'DOWN', _, process, Pid, Reason} -> Reason end.
