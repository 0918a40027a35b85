"""Generate the bundled example: per-customer intent utterances, exported as an analyst would.

    python examples/generate.py            # write sheets/, sheets-v2/ and the `init` sample
    python examples/generate.py --check    # exit 1 when a committed file differs from the output

Everything comes from seeded ``random.Random`` instances (one per customer, so editing one
customer never changes another's rows); nothing is downloaded. Utterances are composed from
per-industry templates x slot values x frames x politeness fragments x small typos, with a little
label noise, so a bag-of-words model lands at a good but imperfect accuracy.

``sheets/`` is the first export; ``sheets-v2/`` is the same export after an analyst's edit: one
customer's rows changed (labels fixed, utterances added and removed) and one customer added.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import re
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from random import Random

SEED = "platform-kit-example-1"
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
V1_DIR = HERE / "sheets"
V2_DIR = HERE / "sheets-v2"
INIT_DIR = ROOT / "platform_kit" / "assets" / "init" / "sheets"
CUSTOMER_COLUMNS = ("customer_id", "name", "industry", "region", "active", "onboarded")
EXAMPLE_COLUMNS = ("example_id", "customer_id", "text", "label")
WORKSHEET = "Sheet1"
MAX_TOTAL_ROWS = 25_000
# A fixed timestamp for the xlsx zip entries and document properties, so the bytes are stable.
XLSX_TIME = (2024, 1, 2, 9, 30, 0)
EDITED_CUSTOMER = "skylark-air"

# ---------------------------------------------------------------------------- vocabulary

# fmt: off
# Slots every industry shares; an industry may add or override its own.
COMMON_SLOTS: dict[str, list[str]] = {
    "when": ["yesterday", "today", "last week", "this morning", "two days ago", "on monday",
             "last night", "over the weekend", "on the 3rd", "earlier today", "last month"],
    "amount": ["$45", "$120", "$19.99", "300 dollars", "$2,500", "$75", "80 bucks", "$9.50",
               "$640", "1000 dollars", "$33.10"],
    "digits": ["4821", "0937", "5512", "7790", "1204", "3368", "9051", "2246"],
    "years": ["two", "3", "five", "ten", "12", "six", "over 20", "a couple of"],
}

# Per industry: its slots, then each intent's action phrases ("do", which go into FRAMES)
# and whole sentences ("say").
INDUSTRIES: dict[str, dict[str, dict[str, list[str]]]] = {
    "bank": {
        "slots": {
            "account": ["checking account", "savings account", "joint account", "business account",
                        "credit card", "debit card", "current account", "student account"],
            "card": ["debit card", "credit card", "visa card", "new card", "platinum card",
                     "replacement card", "card"],
            "person": ["my landlord", "my sister", "a friend", "my contractor", "my son",
                       "another bank", "my savings"],
        },
        "check_balance": {
            "do": ["check my {account} balance", "see how much is in my {account}",
                   "find out my balance", "know my available balance",
                   "view the balance on my {account}", "get my current balance",
                   "see what's left in my {account} after rent"],
            "say": ["what's my balance", "how much money do I have in my {account}",
                    "balance on my {account} please",
                    "do I have enough in my {account} to pay {amount}",
                    "what is the available balance on the {account} ending {digits}"],
        },
        "report_fraud": {
            "do": ["report fraud on my {card}", "report a transaction I didn't make",
                   "flag suspicious activity on my {account}", "report an unauthorized purchase",
                   "report that someone is using my {card}"],
            "say": ["someone used my {card} without permission {when}",
                    "there are purchases on my {account} that I never made",
                    "I think my {card} was cloned",
                    "I got a text about a payment of {amount} that wasn't me",
                    "my {account} was hacked and money is missing",
                    "a stranger spent {amount} with my {card}"],
        },
        "lost_card": {
            "do": ["freeze my {card}", "block my {card} because I lost it",
                   "order a replacement card", "cancel my lost {card}",
                   "get a new card sent to me"],
            "say": ["I lost my {card} {when}", "my wallet was stolen with my {card} in it",
                    "I can't find my {card} anywhere", "I left my {card} at a restaurant {when}",
                    "my {card} was stolen"],
        },
        "activate_card": {
            "do": ["activate my {card}", "turn on my {card}",
                   "set up the {card} that just arrived", "start using my {card}",
                   "enable my {card} for online payments"],
            "say": ["my {card} came in the mail {when} how do I activate it",
                    "the {card} you sent me isn't working yet",
                    "new card arrived, need to activate", "my {card} says it is not activated"],
        },
        "transfer_money": {
            "do": ["send {amount} to {person}", "transfer {amount} from my {account} to {person}",
                   "move money between my accounts", "make a wire transfer",
                   "set up a recurring transfer to {person}", "pay {person} {amount}"],
            "say": ["I need {amount} moved to my savings account",
                    "can you wire {amount} to {person} today",
                    "the transfer to {person} is taking forever"],
        },
        "dispute_charge": {
            "do": ["dispute a charge on my {account}", "get a refund for a double charge",
                   "challenge a fee on my statement", "contest a payment of {amount}",
                   "reverse an overdraft fee"],
            "say": ["I was charged twice for the same purchase {when}",
                    "there's a {amount} fee on my {account} that I don't understand",
                    "the merchant charged me {amount} but never delivered",
                    "why was I charged a monthly fee on my {account}"],
        },
        "open_account": {
            "do": ["open a {account}", "open a new account", "sign up for a {account}",
                   "apply for a {card}", "become a customer"],
            "say": ["I want a second {account} for my business",
                    "what do I need to bring to open an account",
                    "does the {account} have a minimum deposit"],
        },
        "close_account": {
            "do": ["close my {account}", "shut down my account", "cancel my {account}",
                   "move all my money out and close the account"],
            "say": ["I am switching banks and want my {account} closed",
                    "please close the {account} ending in {digits}",
                    "I don't use this {account} anymore"],
        },
        "update_address": {
            "do": ["update my address", "change my mailing address",
                   "change the address on my {account}", "update my phone number",
                   "change my email on file"],
            "say": ["I moved {when} and need my address changed",
                    "my statements are going to my old address",
                    "new address, please update my profile"],
        },
        "loan_inquiry": {
            "do": ["apply for a personal loan", "check the rate on a car loan",
                   "get a mortgage quote", "borrow {amount}", "find out if I qualify for a loan",
                   "refinance my mortgage"],
            "say": ["what are your current mortgage rates", "how long does a loan approval take",
                    "I need a loan of {amount} for home repairs"],
        },
    },
    "airline": {
        "slots": {
            "city": ["Boston", "Denver", "Lisbon", "Chicago", "Seattle", "Madrid", "Toronto",
                     "Miami", "Dublin", "Austin", "Oslo"],
            "flight": ["my flight", "flight {digits}", "my connecting flight", "the 7am flight",
                       "my return flight", "tomorrow's flight", "the red-eye"],
            "bag": ["suitcase", "bag", "checked bag", "carry-on", "stroller", "golf bag",
                    "luggage"],
        },
        "book_flight": {
            "do": ["book a flight to {city}", "buy a ticket from {city} to {city}",
                   "find a cheap flight to {city}", "reserve two seats to {city}",
                   "book a round trip to {city}", "get a one way ticket to {city}"],
            "say": ["are there any flights to {city} next friday",
                    "how much is a ticket to {city} in july",
                    "I'd like to fly to {city} with my family"],
        },
        "change_flight": {
            "do": ["change {flight}", "move {flight} to an earlier time",
                   "rebook {flight} to {city}", "switch {flight} to next week",
                   "change the date of {flight}", "swap {flight} for a later one"],
            "say": ["my meeting moved so I need a different flight",
                    "can I fly out of {city} a day later", "what's the fee to change {flight}"],
        },
        "cancel_flight": {
            "do": ["cancel {flight}", "cancel my trip to {city}", "cancel my reservation",
                   "drop {flight} from my booking"],
            "say": ["I won't be travelling to {city} anymore",
                    "please cancel the booking for {flight}",
                    "something came up and I can't take {flight}"],
        },
        "baggage_claim": {
            "do": ["report a lost {bag}", "find my {bag}", "file a claim for my damaged {bag}",
                   "track my delayed {bag}", "get compensation for my {bag}"],
            "say": ["my {bag} never arrived in {city}", "the airline lost my {bag} {when}",
                    "my {bag} came out of the carousel broken",
                    "I landed in {city} {when} but my {bag} didn't", "my {bag} is still missing"],
        },
        "seat_selection": {
            "do": ["choose a seat on {flight}", "get a window seat",
                   "sit next to my wife on {flight}", "change my seat",
                   "pick an aisle seat on {flight}", "pay for extra legroom"],
            "say": ["we got split up on {flight}", "is there an exit row seat available",
                    "I don't like the middle seat I was given"],
        },
        "check_in": {
            "do": ["check in for {flight}", "get my boarding pass", "check in online",
                   "add my passport details before check in", "print my boarding pass"],
            "say": ["the app won't let me check in for {flight}",
                    "when does check in open for {flight}", "my boarding pass isn't showing"],
        },
        "flight_status": {
            "do": ["check if {flight} is on time", "see the status of {flight}",
                   "find out which gate {flight} leaves from",
                   "know when {flight} lands in {city}"],
            "say": ["is {flight} delayed", "has {flight} to {city} been cancelled",
                    "what time does {flight} arrive", "is the flight from {city} running late"],
        },
        "refund_request": {
            "do": ["get a refund for {flight}", "get my money back for the cancelled flight",
                   "request a refund of {amount}", "claim a refund for my ticket to {city}"],
            "say": ["you cancelled {flight} and I want a refund",
                    "I still haven't received the refund for my trip to {city}",
                    "where is my refund of {amount}"],
        },
        "loyalty_points": {
            "do": ["check my miles balance", "use my miles to book a flight to {city}",
                   "add missing miles from {flight}", "upgrade with my points",
                   "transfer points to my husband"],
            "say": ["my miles from {flight} were never credited", "how many points do I have",
                    "when do my miles expire"],
        },
        "special_assistance": {
            "do": ["request a wheelchair at {city}", "bring my service dog on {flight}",
                   "arrange assistance for my elderly mother", "add a special meal to {flight}",
                   "travel with medical equipment"],
            "say": ["my father needs help getting to the gate in {city}",
                    "I'm travelling with an infant on {flight}",
                    "can I bring my oxygen concentrator on board"],
        },
    },
    "telecom": {
        "slots": {
            "plan": ["unlimited plan", "5GB plan", "family plan", "prepaid plan", "fiber plan",
                     "business plan", "data plan"],
            "device": ["phone", "iphone", "router", "modem", "tablet", "android phone", "sim"],
            "place": ["Spain", "Mexico", "Canada", "Japan", "Italy", "the UK", "France"],
        },
        "pay_bill": {
            "do": ["pay my bill", "pay {amount} on my account", "set up autopay", "make a payment",
                   "update the card I pay my bill with"],
            "say": ["my bill is due {when}, where do I pay it", "I want to pay what I owe",
                    "can I pay my phone bill by bank transfer"],
        },
        "billing_dispute": {
            "do": ["dispute my last bill", "get a credit for an overcharge",
                   "remove a charge from my bill", "question the roaming charges on my bill"],
            "say": ["my bill is {amount} higher than usual",
                    "I was charged for a {plan} I never ordered",
                    "why is there an extra fee on my bill this month",
                    "you billed me twice {when}"],
        },
        "plan_change": {
            "do": ["switch to the {plan}", "upgrade to the {plan}", "downgrade my {plan}",
                   "add more data to my {plan}", "change my {plan}"],
            "say": ["I keep running out of data every month",
                    "is there a cheaper plan than my {plan}",
                    "what plans do you have with more data"],
        },
        "report_outage": {
            "do": ["report an outage", "report that the internet is down",
                   "check if there's an outage in my area", "report no signal at my house"],
            "say": ["my internet has been down since {when}", "no service on my {device} at all",
                    "the whole street lost connection {when}",
                    "is there a network outage right now", "no bars anywhere in my neighbourhood"],
        },
        "slow_internet": {
            "do": ["fix my slow internet", "speed up my connection", "get the speed I pay for",
                   "troubleshoot my {device}", "fix buffering on my {device}"],
            "say": ["my internet is really slow in the evenings",
                    "the wifi keeps dropping every few minutes",
                    "speed test shows a fraction of my {plan}", "my {device} keeps disconnecting"],
        },
        "roaming": {
            "do": ["turn on roaming for my trip to {place}", "add an international pass",
                   "use my {device} in {place}", "get a travel pass for {place}"],
            "say": ["I'm going to {place} {when} will my phone work",
                    "how much is roaming in {place}",
                    "my {device} has no service here in {place}"],
        },
        "sim_replacement": {
            "do": ["get a new sim card", "replace my broken sim", "switch to an esim",
                   "order a sim for my new {device}", "transfer my number to a new sim"],
            "say": ["my sim card stopped working {when}", "my {device} says no sim",
                    "I lost my phone and need my number on a new sim"],
        },
        "upgrade_device": {
            "do": ["upgrade my {device}", "buy the new iphone", "trade in my old {device}",
                   "check if I'm eligible for an upgrade", "get a new {device} on my {plan}"],
            "say": ["my {device} is two years old, can I get a new one",
                    "what's the trade in value of my {device}",
                    "any deals on new phones this month"],
        },
        "cancel_subscription": {
            "do": ["cancel my {plan}", "cancel my contract", "end my service",
                   "terminate my account", "cancel my line"],
            "say": ["I'm moving to another provider", "what is the early termination fee",
                    "please stop my service at the end of the month"],
        },
        "port_number": {
            "do": ["keep my number when I switch", "port my number to you",
                   "transfer my number from my old carrier", "get my port out pin"],
            "say": ["my number transfer is stuck", "I want to bring my number over",
                    "the port of my number failed {when}"],
        },
    },
    "ecommerce": {
        "slots": {
            "item": ["shoes", "jacket", "order", "package", "blender", "headphones", "sofa",
                     "dress", "phone case", "coffee maker", "rug", "backpack"],
            "order": ["order {digits}", "my order", "my last order", "the order I placed {when}",
                      "my package"],
        },
        "track_order": {
            "do": ["track {order}", "find out where {order} is",
                   "get a tracking number for {order}", "see when my {item} will arrive",
                   "check the delivery date of {order}"],
            "say": ["where is {order}", "{order} still says processing",
                    "my {item} hasn't shipped yet",
                    "the tracking for {order} hasn't updated since {when}"],
        },
        "return_item": {
            "do": ["return my {item}", "send back the {item}", "get a return label",
                   "exchange my {item} for a bigger size", "start a return for {order}"],
            "say": ["the {item} doesn't fit", "I changed my mind about the {item}",
                    "how many days do I have to return the {item}",
                    "the {item} looks different than in the pictures"],
        },
        "cancel_order": {
            "do": ["cancel {order}", "stop {order} before it ships", "cancel the {item} I ordered",
                   "remove an item from {order}"],
            "say": ["I ordered the wrong {item} by mistake", "I don't need {order} anymore",
                    "please don't ship the {item}"],
        },
        "refund_status": {
            "do": ["check on my refund", "find out when I get my money back",
                   "get a refund for the returned {item}", "see the status of my refund"],
            "say": ["I returned the {item} {when} and still no refund",
                    "where is my refund of {amount}", "it's been two weeks since my return",
                    "you received my return but didn't refund me"],
        },
        "damaged_item": {
            "do": ["report a damaged {item}", "get a replacement for my broken {item}",
                   "send photos of the damaged {item}", "complain about a defective {item}"],
            "say": ["my {item} arrived broken", "the box was crushed and the {item} is damaged",
                    "the {item} stopped working after one day",
                    "parts are missing from my {item}"],
        },
        "change_address": {
            "do": ["change the shipping address for {order}", "update my delivery address",
                   "send {order} to my office instead", "fix a typo in my address"],
            "say": ["I put the wrong address on {order}",
                    "I moved {when}, can you redirect my {item}",
                    "the address on {order} is my old apartment"],
        },
        "payment_failed": {
            "do": ["pay with a different card", "fix a payment error at checkout",
                   "update my payment method", "use paypal for {order}"],
            "say": ["my card keeps getting declined at checkout",
                    "the payment for {order} failed but I was charged {amount}",
                    "checkout says payment error", "I can't complete my purchase"],
        },
        "apply_coupon": {
            "do": ["use a discount code", "apply a coupon to {order}",
                   "get the sale price on my {item}", "redeem my gift card",
                   "use my store credit"],
            "say": ["my promo code isn't working", "the coupon says expired but it shouldn't be",
                    "I forgot to enter my discount code on {order}"],
        },
        "product_question": {
            "do": ["find out if the {item} is back in stock", "know the size of the {item}",
                   "compare two {item}s", "get notified when the {item} is available"],
            "say": ["is the {item} waterproof", "does the {item} come in blue",
                    "when will the {item} be in stock again",
                    "what material is the {item} made of"],
        },
    },
    "insurance": {
        "slots": {
            "policy": ["car insurance", "home policy", "renters insurance", "auto policy",
                       "life insurance", "policy", "travel insurance", "pet insurance"],
            "incident": ["a car accident", "a burst pipe", "a break in", "hail damage",
                         "a fender bender", "a kitchen fire", "a stolen bike", "storm damage"],
            "driver": ["my daughter", "my husband", "a new driver", "my teenage son",
                       "my partner"],
        },
        "file_claim": {
            "do": ["file a claim for {incident}", "start a claim on my {policy}",
                   "report {incident}", "submit photos for my claim", "make a claim"],
            "say": ["I had {incident} {when}", "there was {incident} at my house {when}",
                    "someone hit my car in the parking lot", "my basement flooded {when}"],
        },
        "claim_status": {
            "do": ["check the status of my claim", "find out when my claim will be paid",
                   "talk to my claims adjuster", "follow up on my claim for {incident}"],
            "say": ["my claim has been open for weeks", "has my claim been approved yet",
                    "nobody called me back about my claim for {incident}",
                    "when will I get the check for my claim"],
        },
        "get_quote": {
            "do": ["get a quote for {policy}", "price a {policy}", "compare quotes",
                   "buy a new {policy}", "see how much {policy} would cost"],
            "say": ["how much is {policy} for a new driver",
                    "I just bought a house and need a {policy}",
                    "what would my premium be for a {policy}"],
        },
        "update_policy": {
            "do": ["update my {policy}", "add my new car to my {policy}", "raise my deductible",
                   "change my coverage", "add {driver} to my {policy}"],
            "say": ["I bought a new car {when}", "{driver} just got a license",
                    "I need more coverage on my {policy}"],
        },
        "cancel_policy": {
            "do": ["cancel my {policy}", "end my {policy}", "stop my {policy} renewal",
                   "get a refund for my cancelled {policy}"],
            "say": ["I found a cheaper insurer", "I sold my car and don't need the {policy}",
                    "please don't renew my {policy}"],
        },
        "coverage_question": {
            "do": ["find out what my {policy} covers", "check if {incident} is covered",
                   "understand my deductible", "see my policy documents"],
            "say": ["am I covered for {incident}", "does my {policy} cover rental cars",
                    "what's my deductible on the {policy}"],
        },
        "payment_due": {
            "do": ["pay my premium", "set up monthly payments", "change my payment date",
                   "pay {amount} toward my {policy}"],
            "say": ["when is my premium due", "I missed a payment on my {policy}",
                    "why did my premium go up by {amount}"],
        },
        "roadside_assistance": {
            "do": ["get a tow truck", "request roadside assistance", "get someone to jump my car",
                   "get help with a flat tire"],
            "say": ["my car broke down on the highway", "I'm locked out of my car",
                    "I have a flat tire and no spare", "my battery is dead"],
        },
    },
    "utilities": {
        "slots": {
            "service": ["electricity", "gas", "water", "power", "electric service", "gas service"],
            "bill": ["bill", "statement", "last bill", "energy bill", "water bill", "invoice"],
        },
        "report_outage": {
            "do": ["report a power outage", "report that my {service} is out",
                   "check if there is an outage near me", "find out when power will be back"],
            "say": ["the power went out {when}", "no {service} in my whole building",
                    "my lights have been off since {when}",
                    "the street lights and my power are out"],
        },
        "start_service": {
            "do": ["start {service} at my new place", "set up {service} for my apartment",
                   "open a new account", "connect {service} at my new home"],
            "say": ["I'm moving into a new house {when} and need {service}",
                    "how long does it take to turn on {service}",
                    "new tenant, need the {service} in my name"],
        },
        "stop_service": {
            "do": ["stop my {service}", "shut off {service} when I move out", "close my account",
                   "disconnect {service} at my old address"],
            "say": ["I'm moving out at the end of the month",
                    "please turn off {service} at my old place",
                    "final meter reading before I leave"],
        },
        "high_bill": {
            "do": ["understand my high {bill}", "dispute my {bill}", "get my {bill} checked",
                   "find out why my {bill} doubled"],
            "say": ["my {bill} is way too high this month", "I was charged {amount} for {service}",
                    "my {bill} went up by {amount} and nothing changed",
                    "there must be a mistake on my {bill}"],
        },
        "pay_bill": {
            "do": ["pay my {bill}", "set up autopay for my {bill}", "pay {amount} on my account",
                   "update my bank details for payments"],
            "say": ["where can I pay my {bill}", "my {bill} is due {when}",
                    "can I pay my {bill} with a credit card"],
        },
        "payment_plan": {
            "do": ["set up a payment plan", "get more time to pay my {bill}",
                   "split my {bill} into installments", "apply for bill assistance"],
            "say": ["I can't afford my {bill} this month",
                    "I lost my job and I'm behind on payments",
                    "is there help for people struggling to pay"],
        },
        "meter_reading": {
            "do": ["submit a meter reading", "send my meter reading", "book a meter check",
                   "get a smart meter installed"],
            "say": ["my meter reading is {digits}", "the estimated reading on my {bill} is wrong",
                    "nobody has read my meter in months"],
        },
        "gas_leak": {
            "do": ["report a gas leak", "report a smell of gas",
                   "get someone out for a gas emergency"],
            "say": ["I smell gas in my kitchen", "there's a strong gas smell outside my house",
                    "my carbon monoxide alarm is going off",
                    "I think there's a leak near the meter"],
        },
        "paperless_billing": {
            "do": ["switch to paperless billing", "get my {bill} by email",
                   "stop paper statements", "download my {bill} as a pdf"],
            "say": ["I don't want paper bills anymore", "I'm not getting my e-bill",
                    "please email my {bill} instead of mailing it"],
        },
    },
    "saas": {
        "slots": {
            "tier": ["pro plan", "team plan", "enterprise plan", "free plan", "starter plan",
                     "annual plan", "business tier"],
            "thing": ["dashboard", "api", "export", "integration", "report", "workspace",
                      "mobile app", "webhook", "login page"],
        },
        "reset_password": {
            "do": ["reset my password", "get back into my account", "change my password",
                   "recover my account", "unlock my account", "turn off two factor on my account"],
            "say": ["I forgot my password", "the password reset email never arrives",
                    "I'm locked out after too many attempts", "my 2fa codes don't work anymore"],
        },
        "upgrade_plan": {
            "do": ["upgrade to the {tier}", "move my team to the {tier}", "add more seats",
                   "switch from the {tier} to annual billing", "try the {tier} for free"],
            "say": ["we've outgrown the {tier}", "what does the {tier} include",
                    "how much is the {tier} for 20 users"],
        },
        "cancel_subscription": {
            "do": ["cancel my subscription", "downgrade to the free plan", "stop the renewal",
                   "delete my account", "cancel the {tier}"],
            "say": ["we don't use the product anymore", "please don't charge my card again",
                    "I want to end my {tier} at the end of this cycle"],
        },
        "billing_question": {
            "do": ["get an invoice for last month", "update my billing address",
                   "change the card on file", "get a refund for an accidental renewal",
                   "add our vat number to invoices"],
            "say": ["I was charged {amount} but I'm on the {tier}", "why did my invoice go up",
                    "I need a receipt for {amount} for my expense report"],
        },
        "api_error": {
            "do": ["fix a 500 error from the {thing}", "debug my api key",
                   "raise my api rate limit", "get the {thing} working again"],
            "say": ["the {thing} keeps returning 401 unauthorized", "I'm getting rate limited",
                    "the {thing} times out since {when}", "requests to the {thing} fail with 500"],
        },
        "add_user": {
            "do": ["invite a teammate", "add a user to my workspace", "remove a user",
                   "make someone an admin", "change a user's permissions"],
            "say": ["my colleague didn't get the invite", "how many users can I add on the {tier}",
                    "a new hire needs access to the {thing}"],
        },
        "export_data": {
            "do": ["export all my data", "download my {thing} as csv",
                   "get a backup of my workspace", "migrate my data to another tool"],
            "say": ["the {thing} export is empty", "the csv export is missing columns",
                    "is there a way to get all my data out"],
        },
        "sso_setup": {
            "do": ["set up single sign on", "connect okta", "configure saml",
                   "enforce sso for my team", "set up scim provisioning"],
            "say": ["our saml login fails with an error", "sso redirect loops back to the {thing}",
                    "does the {tier} support sso"],
        },
        "bug_report": {
            "do": ["report a bug in the {thing}", "report that the {thing} is broken",
                   "send you a screenshot of a bug"],
            "say": ["the {thing} shows a blank screen", "the {thing} crashes when I click save",
                    "charts in the {thing} are showing wrong numbers since {when}",
                    "the {thing} is really slow to load"],
        },
        "feature_request": {
            "do": ["suggest a feature", "request dark mode", "ask for a zapier integration",
                   "vote for a feature on the roadmap"],
            "say": ["it would be great if the {thing} had filters",
                    "please add an option to schedule reports",
                    "any plans to support custom fields"],
        },
    },
    "healthcare": {
        "slots": {
            "doctor": ["my doctor", "dr. patel", "a dermatologist", "a pediatrician",
                       "the cardiologist", "dr. nguyen", "a physiotherapist"],
            "med": ["my blood pressure medication", "my inhaler", "my prescription", "my insulin",
                    "my antibiotics", "my allergy pills"],
            "test": ["blood test", "x-ray", "mri", "lab results", "covid test",
                     "cholesterol test"],
        },
        "book_appointment": {
            "do": ["book an appointment with {doctor}", "see {doctor} next week",
                   "schedule a checkup", "get a same day appointment", "book a telehealth visit"],
            "say": ["when is {doctor} available", "I need to see someone about my back pain",
                    "any openings with {doctor} on friday"],
        },
        "cancel_appointment": {
            "do": ["cancel my appointment", "reschedule my visit with {doctor}",
                   "move my appointment to next week", "cancel my {test}"],
            "say": ["I can't make my appointment {when}", "I'm sick and need to reschedule",
                    "please cancel my visit with {doctor}"],
        },
        "prescription_refill": {
            "do": ["refill {med}", "renew {med}", "send {med} to a different pharmacy",
                   "get more of {med}"],
            "say": ["I'm almost out of {med}", "the pharmacy says my prescription expired",
                    "{doctor} said to refill {med}"],
        },
        "test_results": {
            "do": ["get my {test} results", "see my {test} in the portal", "talk about my {test}",
                   "download my {test} report"],
            "say": ["are my {test} results back", "I had a {test} {when} and heard nothing",
                    "what do my {test} results mean"],
        },
        "billing_question": {
            "do": ["understand my medical bill", "pay my balance of {amount}",
                   "get an itemized bill", "set up a payment plan for my bill"],
            "say": ["I got a bill for {amount} after my visit", "why was I billed for my {test}",
                    "my insurance should have covered this bill"],
        },
        "insurance_coverage": {
            "do": ["check if you take my insurance", "update my insurance card",
                   "find out if my {test} is covered", "get a cost estimate for an mri"],
            "say": ["do you accept blue cross", "I changed insurance {when}",
                    "is {doctor} in network"],
        },
        "update_records": {
            "do": ["update my medical records", "transfer my records to a new clinic",
                   "fix my date of birth in my file", "add an allergy to my chart"],
            "say": ["my records have the wrong address", "I need a copy of my vaccination record",
                    "my chart is missing my {test}"],
        },
    },
    "hotel": {
        "slots": {
            "city": ["Rome", "Vancouver", "Nashville", "Prague", "San Diego", "Kyoto", "Lisbon",
                     "New Orleans"],
            "room": ["room", "suite", "king room", "ocean view room", "double room",
                     "family room"],
            "stay": ["my stay", "my booking", "my reservation", "my weekend stay", "my trip"],
        },
        "book_room": {
            "do": ["book a {room} in {city}", "reserve a {room} for two nights",
                   "find a hotel in {city}", "book a {room} for the conference"],
            "say": ["do you have a {room} available in {city} next weekend",
                    "what's the rate for a {room} in {city}",
                    "we need three rooms for a wedding in {city}"],
        },
        "cancel_booking": {
            "do": ["cancel {stay}", "cancel my {room} in {city}", "get my deposit back",
                   "cancel a reservation without a fee"],
            "say": ["our trip to {city} is off", "please cancel {stay} for next week",
                    "what's the cancellation policy for {stay}"],
        },
        "modify_booking": {
            "do": ["change the dates of {stay}", "add a night to {stay}", "upgrade to a {room}",
                   "add a guest to {stay}", "switch to a {room}"],
            "say": ["we're arriving a day later than planned", "can we extend {stay} in {city}",
                    "we need a crib in the {room}"],
        },
        "late_checkout": {
            "do": ["get a late checkout", "check out at 2pm", "store my luggage after checkout",
                   "get an early check in"],
            "say": ["our flight leaves late, can we keep the {room}",
                    "is late checkout free for members", "we land at 6am, can we check in early"],
        },
        "loyalty_points": {
            "do": ["check my points", "use points for {stay}", "add points from {stay}",
                   "join the rewards program"],
            "say": ["I didn't get points for {stay} in {city}", "how many points for a free night",
                    "my member number isn't on {stay}"],
        },
        "lost_item": {
            "do": ["find something I left in the {room}", "get my charger shipped back",
                   "check lost and found"],
            "say": ["I left my jacket in the {room} in {city}",
                    "I forgot my laptop at the hotel {when}",
                    "did housekeeping find a ring in the {room}"],
        },
        "invoice_request": {
            "do": ["get an invoice for {stay}", "get a receipt with my company name",
                   "correct the invoice for {stay}"],
            "say": ["I need the folio for {stay} for expenses",
                    "the invoice for {stay} shows the wrong amount",
                    "you charged me {amount} extra on checkout"],
        },
        "complaint": {
            "do": ["complain about my {room}", "report a noisy neighbour",
                   "speak to a manager about {stay}", "get compensation for {stay}"],
            "say": ["the {room} was dirty when we arrived",
                    "the air conditioning in the {room} is broken",
                    "the staff in {city} were rude to us", "there was no hot water all weekend"],
        },
    },
    "food_delivery": {
        "slots": {
            "dish": ["pizza", "burger", "sushi", "pad thai", "salad", "burrito", "fries", "curry",
                     "ramen", "tacos"],
            "order": ["my order", "order {digits}", "my dinner order", "my lunch", "the order"],
        },
        "track_order": {
            "do": ["track {order}", "see where my driver is", "find out when {order} will arrive",
                   "check the eta for my {dish}"],
            "say": ["where is {order}", "my {dish} was supposed to be here 30 minutes ago",
                    "the app says delivered but I have nothing",
                    "the driver isn't moving on the map"],
        },
        "missing_item": {
            "do": ["report a missing {dish}", "get a refund for the missing {dish}",
                   "report that {order} was incomplete"],
            "say": ["my {dish} wasn't in the bag", "half of {order} is missing",
                    "I ordered two {dish}s and got one", "the drinks were missing from {order}"],
        },
        "wrong_order": {
            "do": ["report the wrong order", "get the right {dish} sent",
                   "complain that I got someone else's food"],
            "say": ["this isn't what I ordered", "I got {dish} instead of {dish}",
                    "the bag has someone else's name on it", "they sent me the wrong {dish}"],
        },
        "cancel_order": {
            "do": ["cancel {order}", "cancel before the restaurant starts cooking",
                   "cancel the {dish} I just ordered"],
            "say": ["I ordered from the wrong restaurant", "never mind, I don't want {order}",
                    "I placed {order} twice by accident"],
        },
        "refund_request": {
            "do": ["get a refund for {order}", "get my money back for cold {dish}",
                   "request a credit for {order}"],
            "say": ["the {dish} was cold and soggy",
                    "{order} arrived an hour late, I want a refund",
                    "I was charged {amount} for an order I cancelled"],
        },
        "promo_code": {
            "do": ["use a promo code", "get free delivery", "apply my voucher to {order}",
                   "redeem a referral credit"],
            "say": ["the discount code didn't apply", "my first order coupon isn't working",
                    "where do I enter a promo code"],
        },
        "change_address": {
            "do": ["change the delivery address for {order}", "send {order} to my work",
                   "update my saved address"],
            "say": ["I put the wrong apartment number", "the driver went to my old address",
                    "I'm not home, can you deliver {order} next door"],
        },
        "driver_issue": {
            "do": ["report a rude driver", "rate my driver", "tip my driver after delivery",
                   "complain about my courier"],
            "say": ["the driver was rude to me", "my courier left the food in the rain",
                    "the driver asked me to come down five floors"],
        },
    },
}

# How an action phrase becomes an utterance.
FRAMES: list[str] = ["I want to {do}", "I'd like to {do}", "I need to {do}", "how do I {do}?",
    "how can I {do}?", "can I {do}?", "can you help me {do}?", "is it possible to {do}?",
    "please help me {do}", "{do}", "{do} please", "trying to {do}",
    "I'm trying to {do} but it's not working", "where can I {do}?",
    "what's the fastest way to {do}?", "need to {do} asap", "I wanna {do}",
    "could you {do} for me?", "is there a way to {do} online?", "help me {do}",
    "I was wondering if I could {do}", "let me {do}", "how would I {do}?",
    "do I need to call to {do}?", "can someone help me {do}?"]
PREFIXES: list[str] = ["hi", "hello", "hey", "hi there", "good morning", "good afternoon",
    "hello team", "excuse me", "quick question", "hey there", "hiya", "dear support", "yo",
    "sorry to bother you", "hi again"]
SUFFIXES: list[str] = ["thanks", "thank you", "thx", "thanks in advance", "please", "asap",
    "cheers", "appreciate it", "thanks a lot", "ty", "much appreciated", "please help"]
CONTEXT: list[str] = ["I've been a {brand} customer for {years} years",
    "this is the second time I'm asking", "I already tried the app", "I'm on my phone",
    "my account number ends in {digits}", "I called {when} but nobody answered", "this is urgent",
    "my name is on the account", "I'm writing for my mother", "the website didn't help",
    "I'm travelling right now", "I chatted with someone {when}"]
FOLLOW_UPS: list[str] = ["what should I do?", "please help", "can you look into it?",
    "what are my options?", "who do I talk to?", "what now?", "any update?", "can you fix this?"]
# Messages that do not say what they want; analysts label them from the rest of the chat,
# which the sheet does not hold, so no model can get them all right.
VAGUE: list[str] = ["I have a question", "I need some help", "something is wrong with my account",
    "can I talk to a real person", "it's about my {thing}", "hello? anyone there",
    "I have a problem with my {thing}", "same issue as before", "it happened again {when}",
    "still waiting on this", "call me back please", "see my previous message",
    "question about my {thing}", "it's not working", "I need this sorted out today"]
VAGUE_THINGS: dict[str, list[str]] = {
    "bank": ["account", "card", "statement"],
    "airline": ["booking", "flight", "trip"],
    "telecom": ["line", "phone", "bill"],
    "ecommerce": ["order", "purchase", "account"],
    "insurance": ["policy", "claim", "premium"],
    "utilities": ["account", "bill", "service"],
    "saas": ["account", "workspace", "subscription"],
    "healthcare": ["visit", "appointment"],
    "hotel": ["booking", "reservation", "room"],
    "food_delivery": ["order", "delivery"],
}
# fmt: on
KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"


@dataclass(frozen=True)
class Customer:
    customer_id: str
    name: str
    industry: str
    region: str
    active: bool
    onboarded: str
    size: int

    def row(self) -> list[str]:
        return [
            self.customer_id,
            self.name,
            self.industry,
            self.region,
            "TRUE" if self.active else "FALSE",
            self.onboarded,
        ]


@dataclass(frozen=True)
class Example:
    example_id: str
    customer_id: str
    text: str
    label: str
    true_label: str  # what the analyst meant; differs from label for noisy rows

    def row(self) -> list[str]:
        return [self.example_id, self.customer_id, self.text, self.label]


# (customer_id, name, industry, region, active)
CUSTOMERS: list[tuple[str, str, str, str, bool]] = [
    ("northwind-bank", "Northwind Bank", "bank", "us-east", True),
    ("harbor-trust", "Harbor Trust Credit Union", "bank", "us-west", True),
    ("lakeside-savings", "Lakeside Savings", "bank", "us-east", False),
    ("skylark-air", "Skylark Airways", "airline", "eu-west", True),
    ("bluejay-air", "Bluejay Air", "airline", "us-west", True),
    ("polar-wings", "Polar Wings", "airline", "eu-north", False),
    ("relay-mobile", "Relay Mobile", "telecom", "us-east", True),
    ("crestline-telecom", "Crestline Telecom", "telecom", "uk", True),
    ("cartwheel-market", "Cartwheel Market", "ecommerce", "us-east", True),
    ("pinecone-goods", "Pinecone Goods", "ecommerce", "eu-west", True),
    ("urban-threads", "Urban Threads", "ecommerce", "uk", True),
    ("shieldline-insurance", "Shieldline Insurance", "insurance", "us-west", True),
    ("maple-mutual", "Maple Mutual", "insurance", "ca-east", True),
    ("brightgrid-energy", "BrightGrid Energy", "utilities", "us-east", True),
    ("clearwater-utilities", "Clearwater Utilities", "utilities", "us-west", True),
    ("ledgerly", "Ledgerly", "saas", "us-west", True),
    ("tasknest", "TaskNest", "saas", "eu-west", True),
    ("beacon-analytics", "Beacon Analytics", "saas", "apac", True),
    ("wellspring-clinics", "Wellspring Clinics", "healthcare", "us-east", True),
    ("oakridge-health", "Oakridge Health", "healthcare", "us-west", True),
    ("copperleaf-hotels", "Copperleaf Hotels", "hotel", "eu-south", True),
    ("seabreeze-resorts", "Seabreeze Resorts", "hotel", "apac", True),
    ("quickbite", "QuickBite", "food_delivery", "uk", True),
    ("forkful", "Forkful", "food_delivery", "us-east", True),
]
NEW_CUSTOMER = ("sunpeak-power", "Sunpeak Power & Light", "utilities", "us-west", True)


# ---------------------------------------------------------------------------- composing text


class Composer:
    """Writes utterances for one customer from its industry's templates."""

    def __init__(self, rng: Random, customer: Customer, typos: bool = True) -> None:
        self.rng = rng
        self.industry_name = customer.industry
        self.industry = INDUSTRIES[customer.industry]
        self.slots = {**COMMON_SLOTS, **self.industry["slots"]}
        self.brand = customer.name.split()[0]
        self.typos = typos

    def fill(self, template: str) -> str:
        def pick(match: re.Match[str]) -> str:
            key = match.group(1)
            if key == "brand":
                return self.brand
            return self.fill(self.rng.choice(self.slots[key]))

        return re.sub(r"\{(\w+)\}", pick, template)

    def vague(self) -> str:
        thing = self.rng.choice(VAGUE_THINGS[self.industry_name])
        return self.polish(self.fill(self.rng.choice(VAGUE).replace("{thing}", thing)))

    def utterance(self, intent: str) -> str:
        rng = self.rng
        spec = self.industry[intent]
        if rng.random() < 0.55:
            frame = rng.choice(FRAMES)
            text = frame.replace("{do}", self.fill(rng.choice(spec["do"])))
        else:
            text = self.fill(rng.choice(spec["say"]))
            if rng.random() < 0.2:
                text = f"{text}. {rng.choice(FOLLOW_UPS)}"
        if rng.random() < 0.15:
            context = self.fill(rng.choice(CONTEXT))
            text = f"{context}. {text}" if rng.random() < 0.5 else f"{text}. {context}"
        if rng.random() < 0.3:
            text = f"{rng.choice(PREFIXES)}{rng.choice([', ', ' ', '! ', ' - '])}{text}"
        if rng.random() < 0.25:
            text = f"{text.rstrip('?.!')}{rng.choice([', ', '. ', ' '])}{rng.choice(SUFFIXES)}"
        return self.polish(text)

    def polish(self, text: str) -> str:
        """Casing, punctuation and typing mistakes, as people write in a chat box."""
        rng = self.rng
        style = rng.random()
        if style < 0.2:
            text = text.lower().replace("?", "").rstrip(".!")
        elif style < 0.75:
            text = text[0].upper() + text[1:]
            if not text.endswith(("?", "!", ".")):
                text += rng.choice([".", "", "", "!"])
        elif style < 0.8:
            text = text.upper()
        if self.typos:
            words = text.split(" ")
            for i, word in enumerate(words):
                if len(word) > 3 and rng.random() < 0.035:
                    words[i] = typo(rng, word)
            text = " ".join(words)
        return text


def typo(rng: Random, word: str) -> str:
    i = rng.randrange(1, len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:  # swap two letters
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:  # drop a letter
        return word[:i] + word[i + 1 :]
    if kind == 2:  # double a letter
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice(KEYBOARD) + word[i + 1 :]


# ---------------------------------------------------------------------------- the data set


def intents_of(industry: str) -> list[str]:
    return [k for k in INDUSTRIES[industry] if k != "slots"]


def make_customer(spec: tuple[str, str, str, str, bool]) -> Customer:
    customer_id, name, industry, region, active = spec
    rng = Random(f"{SEED}/{customer_id}/profile")
    onboarded = dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(5 * 365))
    return Customer(
        customer_id,
        name,
        industry,
        region,
        active,
        onboarded.isoformat(),
        size=rng.randrange(300, 1501),
    )


def make_examples(
    customer: Customer,
    *,
    noise: float = 0.05,
    vague: float = 0.06,
    typos: bool = True,
    size: int | None = None,
    n_labels: int | None = None,
) -> list[Example]:
    """The customer's labelled utterances; the same customer always gets the same rows."""
    rng = Random(f"{SEED}/{customer.customer_id}/examples")
    intents = intents_of(customer.industry)
    k = rng.randint(5, min(10, len(intents)))
    labels = rng.sample(intents, k=n_labels or k)
    weights = [rng.uniform(0.4, 2.0) for _ in labels]
    composer = Composer(rng, customer, typos=typos)
    seen: set[str] = set()
    out: list[Example] = []
    count = customer.size if size is None else size
    while len(out) < count:
        true_label = rng.choices(labels, weights)[0]
        say = composer.vague if rng.random() < vague else partial(composer.utterance, true_label)
        text = say()
        for _ in range(5):  # near-duplicates are fine, exact ones are rare in real exports
            if text.lower() not in seen:
                break
            text = say()
        seen.add(text.lower())
        label = rng.choice(labels) if rng.random() < noise else true_label
        out.append(
            Example(
                f"{customer.customer_id}-{len(out) + 1:05d}",
                customer.customer_id,
                text,
                label,
                true_label,
            )
        )
    return out


def analyst_edit(customer: Customer, rows: list[Example]) -> list[Example]:
    """The second export of one customer: some labels fixed, rows removed and added."""
    rng = Random(f"{SEED}/{customer.customer_id}/edit")
    wrong = [r for r in rows if r.label != r.true_label]
    fixed = {r.example_id for r in rng.sample(wrong, k=max(1, len(wrong) // 2))}
    removed = {r.example_id for r in rng.sample(rows, k=25) if r.example_id not in fixed}
    kept = [
        replace(r, label=r.true_label) if r.example_id in fixed else r
        for r in rows
        if r.example_id not in removed
    ]
    composer = Composer(rng, customer)
    labels = sorted({r.true_label for r in rows})
    added = []
    for n in range(60):
        label = rng.choice(labels)
        example_id = f"{customer.customer_id}-{len(rows) + n + 1:05d}"
        added.append(
            Example(example_id, customer.customer_id, composer.utterance(label), label, label)
        )
    return kept + added


@dataclass(frozen=True)
class Export:
    customers: list[Customer]
    examples: list[Example]


def build() -> tuple[Export, Export]:
    customers = [make_customer(spec) for spec in CUSTOMERS]
    per_customer = {c.customer_id: make_examples(c) for c in customers}
    v1 = Export(customers, [e for c in customers for e in per_customer[c.customer_id]])
    total = len(v1.examples)
    if total > MAX_TOTAL_ROWS:
        raise SystemExit(f"the example has {total} rows, more than {MAX_TOTAL_ROWS}")

    edited = next(c for c in customers if c.customer_id == EDITED_CUSTOMER)
    new = make_customer(NEW_CUSTOMER)
    v2_rows = analyst_edit(edited, per_customer[EDITED_CUSTOMER])
    v2_by_id = {r.example_id: r for r in v2_rows}
    # The analyst edits in place: unchanged and fixed rows keep their position, removed rows
    # vanish, new rows are appended at the bottom, then the new customer's rows.
    kept: list[Example] = []
    for row in v1.examples:
        if row.customer_id != EDITED_CUSTOMER:
            kept.append(row)
        elif row.example_id in v2_by_id:
            kept.append(v2_by_id[row.example_id])
    v1_ids = {r.example_id for r in v1.examples}
    appended = [r for r in v2_rows if r.example_id not in v1_ids]
    v2 = Export([*customers, new], kept + appended + make_examples(new))
    return v1, v2


def init_sample() -> Export:
    """The small, clean sample `platform-kit init` writes: three customers, a few dozen rows."""
    specs = [
        ("acme-bank", "Acme Bank", "bank", "us-east", True),
        ("zephyr-air", "Zephyr Air", "airline", "eu-west", True),
        ("globex-shop", "Globex Shop", "ecommerce", "uk", False),
    ]
    customers = [make_customer(spec) for spec in specs]
    examples = [
        e
        for c, size in zip(customers, (40, 40, 12), strict=True)
        for e in make_examples(c, noise=0.0, vague=0.0, typos=False, size=size, n_labels=3)
    ]
    return Export(customers, examples)


# ---------------------------------------------------------------------------- writing


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def xlsx_bytes(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    """An XLSX workbook with one worksheet, with stable bytes for the same rows."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = WORKSHEET
    sheet.append(list(header))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(list(row))
    sheet.freeze_panes = "A2"
    for column, width in zip("ABCD", (22, 22, 70, 22), strict=True):
        sheet.column_dimensions[column].width = width
    fixed = dt.datetime(*XLSX_TIME)
    workbook.properties.creator = "analyst"
    workbook.properties.created = fixed
    raw = io.BytesIO()
    workbook.save(raw)
    return _stable_zip(raw.getvalue(), fixed)


def _stable_zip(data: bytes, when: dt.datetime) -> bytes:
    """Re-pack a zip with fixed entry times (openpyxl stamps the current time everywhere)."""
    stamp = when.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                body = re.sub(rb"(<dcterms:modified[^>]*>)[^<]*", rb"\g<1>" + stamp, body)
            entry = zipfile.ZipInfo(info.filename, date_time=XLSX_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o600 << 16
            dst.writestr(entry, body, compresslevel=9)
    return out.getvalue()


def outputs() -> dict[Path, bytes]:
    """Every generated file and its bytes."""
    v1, v2 = build()
    sample = init_sample()
    files: dict[Path, bytes] = {}
    for directory, export in ((V1_DIR, v1), (V2_DIR, v2)):
        files[directory / "customers.csv"] = csv_bytes(
            CUSTOMER_COLUMNS, [c.row() for c in export.customers]
        )
        files[directory / "examples.xlsx"] = xlsx_bytes(
            EXAMPLE_COLUMNS, [e.row() for e in export.examples]
        )
    files[INIT_DIR / "customers.csv"] = csv_bytes(
        CUSTOMER_COLUMNS, [c.row() for c in sample.customers]
    )
    files[INIT_DIR / "examples.csv"] = csv_bytes(
        EXAMPLE_COLUMNS, [e.row() for e in sample.examples]
    )
    return files


def xlsx_rows(data: bytes) -> list[tuple[object, ...]]:
    """The cell values of the example worksheet, to compare content across openpyxl versions."""
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(data), read_only=True)
    try:
        return [tuple(row) for row in workbook[WORKSHEET].iter_rows(values_only=True)]
    finally:
        workbook.close()


def check(files: dict[Path, bytes]) -> list[str]:
    """What differs between the committed files and ``files``; empty when they match."""
    problems: list[str] = []
    for path, expected in files.items():
        name = path.relative_to(ROOT)
        if not path.exists():
            problems.append(f"{name}: missing")
            continue
        actual = path.read_bytes()
        if actual == expected:
            continue
        # Another openpyxl may zip the same cells differently; the data is what must match.
        if path.suffix == ".xlsx" and xlsx_rows(actual) == xlsx_rows(expected):
            continue
        problems.append(f"{name}: differs from what generate.py writes")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="verify the committed files instead of writing"
    )
    args = parser.parse_args(argv)
    files = outputs()
    if args.check:
        problems = check(files)
        for problem in problems:
            print(problem, file=sys.stderr)
        if problems:
            print("run 'python examples/generate.py' and commit the result", file=sys.stderr)
            return 1
        print(f"ok: {len(files)} files match")
        return 0
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        print(f"wrote {path.relative_to(ROOT)} ({len(data):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
