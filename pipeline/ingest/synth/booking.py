"""Booking family: an airline agent changes, cancels or books flights with tools.

Recurring failure patterns, each recorded in ``grader.injected``:

- ``date_format``: the agent sends ``MM/DD/YYYY``; the search tool rejects it and wants
  ``YYYY-MM-DD``; most agents retry with the right format and go on;
- ``skipped_lookup``: the agent changes a reservation without reading it first; the tool
  refuses, or (worse) the change goes through on the wrong cabin and the grader fails the run;
- ``repeated_call``: the agent repeats the identical failing call several times and gives up;
- ``payment_split``: payment amounts that do not add up, rejected by the tool.
"""

from __future__ import annotations

import random

from pipeline.ingest.synth.episode import Conversation, Episode, Text, chance

AIRPORTS = ["JFK", "SEA", "LAX", "SFO", "ORD", "DFW", "ATL", "BOS", "MIA", "DEN", "PHX", "LAS"]
POLICY = (
    "# Airline Agent Policy\n\nThe current time is 2024-05-15 15:00:00 EST.\n\n"
    "- Before taking any action that updates the booking database, list the action details "
    "and obtain explicit user confirmation (yes) to proceed.\n"
    "- Always read a reservation with get_reservation_details before changing it.\n"
    "- Dates are written YYYY-MM-DD in every tool call.\n"
    "- Payment amounts must add up to the total price.\n"
)


def _flights(rng: random.Random, origin: str, dest: str, date: str, text: Text) -> list[dict]:
    return [
        {"flight_number": f"HAT{rng.randint(1, 299):03d}", "origin": origin, "destination": dest,
         "date": date, "scheduled_departure_time_est": f"{rng.randint(5, 22):02d}:00:00",
         "status": "available", "prices": {"basic_economy": rng.randint(50, 120),
         "economy": rng.randint(120, 300), "business": rng.randint(300, 900)},
         "available_seats": {"economy": rng.randint(0, 20), "business": rng.randint(0, 8)},
         "notes": text.prose(1)}
        for _ in range(rng.randint(2, 5))
    ]  # fmt: skip


def episode(rng: random.Random, text: Text, model: str, task_no: int) -> Episode:
    first, last = text.name()
    user_id = f"{first.lower()}_{last.lower()}_{rng.randint(1000, 9999)}"
    res_id = "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ23456789", k=6))
    origin, dest = rng.sample(AIRPORTS, 2)
    day = rng.randint(16, 30)
    iso, us = f"2024-05-{day:02d}", f"05/{day:02d}/2024"
    cabin = rng.choice(["economy", "business"])
    injected: list[str] = []
    c = Conversation(rng)
    c.system(POLICY)
    c.user(f"Hi, I'd like to move my {origin} to {dest} trip to May {day}. {text.prose(1)}")
    c.say("I can help with that. Could you give me your user ID?")
    c.user(f"Sure, it's {user_id}.")
    user = {"user_id": user_id, "name": {"first_name": first, "last_name": last},
            "reservations": [res_id] + ["".join(rng.choices("ABCDEFGHJK2345", k=6)) for _ in range(2)],
            "payment_methods": {"credit_card_7447": {"source": "credit_card", "last_four": "7447"},
                                "gift_card_1210": {"source": "gift_card", "amount": rng.randint(20, 200)}},
            "membership": rng.choice(["regular", "silver", "gold"]), "notes": text.prose(1)}  # fmt: skip
    c.call("get_user_details", {"user_id": user_id}, user, "Let me look up your profile.")
    reservation = {"reservation_id": res_id, "user_id": user_id, "origin": origin,
                   "destination": dest, "cabin": cabin, "flight_type": "one_way",
                   "flights": _flights(rng, origin, dest, "2024-05-20", text)[:1],
                   "passengers": [{"first_name": first, "last_name": last}]}  # fmt: skip
    skipped = chance(rng, 0.25, model)
    if skipped:
        injected.append("skipped_lookup")
    else:
        c.call("get_reservation_details", {"reservation_id": res_id}, reservation)
    failed = False
    search = {"origin": origin, "destination": dest, "date": us}
    if chance(rng, 0.35, model):
        injected.append("date_format")
        error = f"Error: invalid date '{us}': dates must be YYYY-MM-DD"
        c.call("search_direct_flight", search, error, "Searching for flights on that day.")
        if chance(rng, 0.3, model):
            injected.append("repeated_call")
            for _ in range(rng.randint(2, 4)):
                c.call("search_direct_flight", search, error)
            c.say("I'm sorry, the flight search is not working right now. Let me transfer you.")
            c.call(
                "transfer_to_human_agents",
                {"summary": "flight search keeps failing"},
                "Transfer successful",
            )
            failed = True
    if not failed:
        flights = _flights(rng, origin, dest, iso, text)
        c.call("search_direct_flight", {**search, "date": iso}, flights)
        pick = rng.choice(flights)
        c.say(f"Flight {pick['flight_number']} departs at {pick['scheduled_departure_time_est']}. "
              f"Shall I move reservation {res_id} to it, keeping {cabin}? (yes/no)")  # fmt: skip
        c.user("Yes, please.")
        update = {"reservation_id": res_id, "cabin": cabin, "payment_id": "credit_card_7447",
                  "flights": [{"flight_number": pick["flight_number"], "date": iso}]}  # fmt: skip
        if skipped and rng.random() < 0.6:
            c.call("update_reservation_flights", update,
                   f"Error: reservation {res_id} was not loaded: call get_reservation_details first")  # fmt: skip
            c.call("get_reservation_details", {"reservation_id": res_id}, reservation)
        elif skipped:
            update["cabin"] = "basic_economy"  # guessed, never read: the silent failure
            failed = True
        if chance(rng, 0.1, model):
            injected.append("payment_split")
            bad = {**update, "payment_id": "gift_card_1210", "amount": rng.randint(1, 19)}
            c.call("update_reservation_flights", bad, "Error: payment amount does not add up, total is "
                   f"{pick['prices'][cabin] if cabin in pick['prices'] else 0}")  # fmt: skip
        c.call("update_reservation_flights", update, {**reservation, "flights": update["flights"],
               "cabin": update["cabin"]})  # fmt: skip
        c.say(f"Done: reservation {res_id} is now on {pick['flight_number']} on {iso}.")
        failed = failed or rng.random() < 0.08  # e.g. the user wanted another flight
    c.user("Thanks, that's all. ###STOP###")
    gold = [{"name": "get_reservation_details", "kwargs": {"reservation_id": res_id}},
            {"name": "update_reservation_flights", "kwargs": {"reservation_id": res_id, "cabin": cabin}}]  # fmt: skip
    return Episode(
        family="booking",
        task_id=f"booking-{task_no}",
        model=model,
        outcome="failure" if failed else "success",
        messages=c.messages,
        grader={
            "instruction": f"You are {user_id}. Move reservation {res_id} to May {day}, "
            f"same cabin ({cabin}); pay with card 7447.",
            "actions": gold,
            "injected": injected,
        },  # fmt: skip
    )
